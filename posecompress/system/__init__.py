"""The pose pair as one system: the detector finds people, the classifier labels each (pipeline),
and the pair measured against the dataset's people and activities (evaluation)."""
