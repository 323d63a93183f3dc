class PathManager:
    open = staticmethod(open)
