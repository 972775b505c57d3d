"""Many idle logged-in sessions at once, for `cargo xtask bench`.

    idle_sessions.py HOST PORT USER PASSWORD N LIMIT

Opens N control connections to HOST:PORT from this one process (asyncio,
non-blocking sockets), and logs each in: the greeting, USER, and PASS when
asked (vsftpd's anonymous user is in at USER). At most 24 connect and log in
at a time: fewer than the smallest listen backlog among the servers
(vsftpd's 32), since a connection that overflows a full accept queue looks
established to its client, which then waits for a greeting that never
comes. A session is admitted when it gets its 230; one that is refused,
closed, or not logged in within 30 seconds is not. Then prints one line of JSON,
{"held": ADMITTED, "of": N, "seconds": S} (S: from the first connect to the
last reply), and holds every admitted session open and idle until a line
(or end of file) arrives on standard input, when each sends QUIT, reads
the reply and closes. Then prints {"count": ADMITTED, "of": N, "seconds": S,
"quit": SESSIONS_THAT_GOT_221}.

RLIMIT_NOFILE's soft limit is raised to the hard one first. Bounded: the
logins get LIMIT seconds in all, the wait on standard input too, and the
QUITs 20 seconds; every socket is closed at the end.
"""
import asyncio
import json
import resource
import sys
import time

IN_FLIGHT = 24
LOGIN_LIMIT = 30
QUIT_LIMIT = 20


async def reply(reader):
    """The code of one whole reply (multi-line too) and its last line; 0 at
    end of file."""
    line = await reader.readline()
    if not line:
        return 0, "end of file"
    code = line[:3]
    while line[3:4] == b"-":
        line = await reader.readline()
        if not line:
            return 0, "end of file"
        if line[:3] == code and line[3:4] == b" ":
            break
    text = line.decode(errors="replace").strip()[:100]
    try:
        return int(code), text
    except ValueError:
        return 0, text


async def command(reader, writer, text):
    writer.write(text.encode() + b"\r\n")
    await writer.drain()
    return await reply(reader)


async def log_in(host, port, user, password, gate, held, refused):
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), LOGIN_LIMIT)
        except asyncio.TimeoutError:
            refused.append(f"no connection within {LOGIN_LIMIT} s")
            return
        except OSError as e:
            refused.append(f"connect: {e}")
            return

        async def converse():
            code, text = await reply(reader)
            if code == 220:
                code, text = await command(reader, writer, f"USER {user}")
                if code == 331:
                    code, text = await command(reader, writer, f"PASS {password}")
            return code, text

        try:
            code, text = await asyncio.wait_for(converse(), LOGIN_LIMIT)
            if code == 230:
                held.append((reader, writer))
                return
            refused.append(f"reply {text}")
        except asyncio.TimeoutError:
            refused.append(f"no login reply within {LOGIN_LIMIT} s")
        except OSError as e:
            refused.append(f"{e}")
        writer.close()


async def quit_one(reader, writer):
    try:
        code, _ = await command(reader, writer, "QUIT")
    except OSError:
        code = 0
    writer.close()
    return code == 221


def wait_for_line(limit):
    """Blocks until a line or end of file on stdin, or `limit` seconds."""
    import select
    ready, _, _ = select.select([sys.stdin], [], [], limit)
    if ready:
        sys.stdin.readline()


async def run(host, port, user, password, n, limit):
    held, refused = [], []
    gate = asyncio.Semaphore(IN_FLIGHT)
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(log_in(host, port, user, password, gate, held, refused))
             for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    seconds = time.perf_counter() - start
    reasons = sorted(set(refused))[:3]
    print(json.dumps({"held": len(held), "of": n, "seconds": seconds,
                      "late": len(pending), "refused": reasons}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, wait_for_line, limit)
    try:
        quits = await asyncio.wait_for(
            asyncio.gather(*(quit_one(r, w) for r, w in held)), QUIT_LIMIT)
    except asyncio.TimeoutError:
        quits = []
    for _, writer in held:
        writer.close()
    return {"count": len(held), "of": n, "seconds": seconds, "quit": sum(quits)}


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    host, port, user, password, n, limit = sys.argv[1:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(run(host, int(port), user, password, int(n), float(limit)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
