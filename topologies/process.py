"""A daemon the lab starts for a test: its own temp dir and log, started and waited for,
stopped by the pid we started, its dir removed."""
import os
import shutil
import signal
import subprocess
import tempfile
import time


class Daemon:
    """Subclasses say what to run (`start`) and when it is up (`_ready`)."""
    name = 'daemon'

    def __init__(self, prefix: str, log_name: str):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.log_path = os.path.join(self.dir, log_name)
        self.proc: subprocess.Popen | None = None

    def _spawn(self, argv: list[str], timeout: float, **popen) -> None:
        """Run argv, its output to the log, until `_ready()` (RuntimeError, with the log,
        if it exits or is not ready in `timeout` seconds)."""
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         **popen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with %s:\n%s' % (self.name, self.proc.returncode,
                                                               self.log()))
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError('%s was not ready in %.0fs:\n%s' % (self.name, timeout, self.log()))

    def _ready(self) -> bool:
        raise NotImplementedError

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process we started (SIGKILL after 5 s); idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop it and remove its temp dir; idempotent."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def log(self) -> str:
        try:
            with open(self.log_path, errors='replace') as log:
                return log.read()
        except FileNotFoundError:
            return ''
