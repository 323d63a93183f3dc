"""Stand-in for nltk (imported by official text-augmentation code the harness never runs)."""


def download(*args, **kwargs):
    return True


def _unavailable(*args, **kwargs):
    raise NotImplementedError("nltk is not available in the parity harness")


word_tokenize = pos_tag = RegexpParser = _unavailable


class Tree:
    pass
