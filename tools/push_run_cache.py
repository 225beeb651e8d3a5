"""Push the run-cache to a DVC remote together with every output it names, metrics included.

    python -m tools.push_run_cache [-r REMOTE]

`dvc push --run-cache` (DVC 3) sends the run-cache entries and the outputs of the current
dvc.lock, but not the objects of outputs declared `cache: false` (our metrics and the report),
which DVC keeps in the local cache only for the run-cache's sake. A fresh clone that finds a
stage in the run-cache then cannot restore it and runs the stage again. This sends those
objects too, so that `dvc pull --run-cache` and `dvc repro --pull` restore every stage that has
run anywhere, without running it.
"""
import argparse
import sys

from posecompress.common.checks import InputError, run_stage


def push_run_cache(remote=None, jobs=None) -> tuple:
    """(files pushed by `dvc push --run-cache`, run-cache objects pushed, objects missing locally)
    for the repository in the working directory."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo() as repo:
        try:
            entries = repo.push(remote=remote, run_cache=True, jobs=jobs)
            # DVC's own collection of the objects a run-cache entry names (it treats every
            # output as cached); DVC 3's push no longer sends the uncached ones among them.
            objects, failed = 0, set()
            for hashes in repo.stage_cache.get_used_objs(list(_entries(repo))).values():
                result = repo.cloud.push(hashes, jobs=jobs, remote=remote)
                objects, failed = objects + len(result.transferred), failed | result.failed
        except DvcException as e:
            raise InputError(f"dvc push: {e}") from None
    return entries, objects, len(failed)


def _entries(repo):
    """(stage key, entry) of every run-cache entry in the local cache."""
    fs = repo.cache.legacy.fs
    runs = fs.join(repo.cache.legacy.path, "runs")
    if not fs.exists(runs):
        return
    for path in fs.find(runs):
        yield fs.name(fs.parent(path)), fs.name(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--remote", help="DVC remote (default: the default remote)")
    ap.add_argument("-j", "--jobs", type=int)
    a = ap.parse_args()
    entries, objects, missing = push_run_cache(a.remote, a.jobs)
    print(f"pushed {entries} files with the run-cache, then {objects} objects its entries name")
    if missing:  # entries of old runs whose outputs `dvc gc` removed: those stages will run again
        print(f"warning: {missing} objects named by the run-cache are not in the local cache", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
