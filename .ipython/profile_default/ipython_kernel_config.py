c = get_config()  # noqa: F821 -- IPython's config loader provides get_config() when it runs this file
c.IPKernelApp.capture_fd_output = False
