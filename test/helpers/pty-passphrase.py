# Drives a program that reads a passphrase from its terminal (age -p, age -d): runs it under a pseudo-terminal
# and answers every prompt ending in ":" with the passphrase. Used by the age interop tests.
import os, pty, sys, time, select
# usage: agepty.py PASSPHRASE age-args...
passphrase = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
buf = b''
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.5)
    if not r:
        if os.waitpid(pid, os.WNOHANG)[0]: break
        continue
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data: break
    buf += data
    if buf.rstrip().endswith(b':'):
        os.write(fd, passphrase + b'\n')
        buf = b''
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
