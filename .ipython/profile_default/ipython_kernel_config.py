c.IPKernelApp.capture_fd_output = False
