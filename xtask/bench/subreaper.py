"""Runs a server as the child of a child subreaper, for `cargo xtask bench`.

    subreaper.py PROGRAM [ARG...]

vsftpd's session processes can outlive their parent; the kernel then hands
them to the nearest subreaper (else init), and whoever reaps them gets their
CPU time in its `cutime`/`cstime`. This process is that subreaper, so the
bench can count them: the server's CPU is the server's own figures plus this
process's children's. SIGTERM and SIGINT are passed on to PROGRAM; exits
with PROGRAM's status once PROGRAM has exited.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)

    def forward(signum, frame):
        del frame
        os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        pid, status = os.wait()
        if pid == child:
            sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)


if __name__ == "__main__":
    main()
