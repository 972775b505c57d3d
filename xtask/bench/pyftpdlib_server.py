"""pyftpdlib as `cargo xtask bench` runs it: its default single-process
asynchronous FTPServer and FTPHandler (sendfile for RETR where the OS has
it, logging at INFO to stderr as out of the box), one user with every
permission, on a given port and passive range, admitting up to MAX_CONS
connections in all and from one address (the bench's idle sessions), and
with RLIMIT_NOFILE's soft limit raised to the hard one for them.

    pyftpdlib_server.py ROOT PORT PASSIVE_LO PASSIVE_HI USER PASSWORD MAX_CONS
"""
import resource
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    root, port, lo, hi, user, password, max_cons = sys.argv[1:]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.passive_ports = range(int(lo), int(hi) + 1)
    server = FTPServer(("127.0.0.1", int(port)), handler)
    server.max_cons = int(max_cons)
    server.max_cons_per_ip = int(max_cons)
    server.serve_forever()


if __name__ == "__main__":
    main()
