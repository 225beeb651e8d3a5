"""onnxruntime's calibration reader for static quantization, over real dataset images.

Kept apart from the quantize stage, as in onnxruntime's quantization examples: the reader only
feeds input tensors, one image per call, prepared as the validator prepares them.
"""
from onnxruntime.quantization import CalibrationDataReader

from posecompress.common.images import validator_tensor


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds {input_name: 1x3xHxW tensor} for each image file in turn, then None."""

    def __init__(self, files, input_name: str, shape):
        self.files, self.input_name, self.shape = list(files), input_name, tuple(shape)
        self.rewind()

    def get_next(self):
        if self._next >= self._end:
            return None
        f = self.files[self._next]
        self._next += 1
        return {self.input_name: validator_tensor(f, self.shape)}

    def __len__(self):
        return len(self.files)

    def rewind(self):
        self._next, self._end = 0, len(self.files)

    def set_range(self, start_index: int, end_index: int):
        """Feed files[start_index:end_index] next (onnxruntime's chunked MinMax calibration)."""
        self._next, self._end = start_index, min(end_index, len(self.files))
