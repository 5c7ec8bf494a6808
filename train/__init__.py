"""Train a mask classifier on generated faces and score it on real photos (``python -m train``)."""
