"""Stand-in for omegaconf: the official ``configurable`` decorator imports DictConfig."""


class DictConfig(dict):
    pass
