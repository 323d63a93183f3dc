def retry_if_cuda_oom(func):
    """detectron2 retries on CUDA OOM; on CPU it is the identity."""
    return func
