"""Benchmark of the console's cost: CPU share and engine loop lag p99, screen on vs off.

The embedded exchange is cranked to about 500 market messages a second (a book every 2.5 ms
plus ~100 takers a second). Each mode runs in its own process for `--seconds` after a
warm-up, measuring itself (process CPU time over wall time; every engine wake-up's lateness):

- off: the LiveEngine alone, as `perpdesk --headless` runs it (no status printing);
- on:  the real Textual console on a pseudo-terminal of `--size` (160x50 by default), its
       output drained by this process and counted (what an SSH session would carry).

Figures, not asserts. Targets (issue 4): the screen under 20% of one core, and under 5 ms
added to the engine's loop lag p99.

`--view pnl` measures the console showing the P&L view with the session's charts (`--history-h
24` gives them a day's history to draw); `--view
blotter` (or `alerts`) the blotter reading the journal once a second. `--journal` journals both
modes into a temporary state directory (the blotter reads that journal; without it the
blotter has nothing to read), so both pay the journal alike.

    .venv/bin/python bench/ui.py [--seconds 10] [--fps 10] [--size 160x50] [--rate 500]
                                 [--view desk|pnl|blotter|alerts] [--journal]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import gc
import json
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import Settings, UiSettings  # noqa: E402
from engine.live import LiveEngine  # noqa: E402
from engine.sim.configure import sim_params  # noqa: E402
from engine.sim.params import SimParams  # noqa: E402

WARMUP_S = 3.0


def cranked_params(settings: Settings, rate_per_s: float) -> SimParams:
    """Sim params that emit about `rate_per_s` venue events a second (books + takers)."""
    books_per_s = rate_per_s * 0.8
    takers_per_s = rate_per_s * 0.2 / 1.5  # a taker makes ~1.5 events (trades, our fills)
    return dataclasses.replace(
        sim_params(settings.sim),
        book_interval_s=1.0 / books_per_s,
        taker_rate_per_s=takers_per_s,
        informed_horizon_s=1.0,
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class _Probe:
    """Measures a running engine from warm-up end to the end of the window."""

    def __init__(self, engine: LiveEngine) -> None:
        self.engine = engine
        self.cpu0 = self.wall0 = 0.0
        self.events0 = 0

    def start(self) -> None:
        self.engine.reset_lag_stats()
        self.events0 = self.engine.events_total
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def result(self, **extra: Any) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        lags = self.engine.lag_samples_ms()
        return {
            "cpu_share": (time.process_time() - self.cpu0) / wall,
            "wall_s": wall,
            "events_per_s": (self.engine.events_total - self.events0) / wall,
            "lag_p50_ms": _percentile(lags, 0.50),
            "lag_p99_ms": _percentile(lags, 0.99),
            "lag_max_ms": max(lags, default=0.0),
            "wakeups": len(lags),
            "gc_gen2": gc.get_stats()[2]["collections"],
            **extra,
        }


def _engine(settings: Settings, rate: float, state_dir: Path | None) -> LiveEngine:
    params = cranked_params(settings, rate)
    if state_dir is None:
        return LiveEngine(settings, params=params, lag_window_s=1e6)
    from engine.session import open_engine

    return open_engine(settings, state_dir, params=params, lag_window_s=1e6)


async def _child_off(
    settings: Settings, rate: float, seconds: float, state_dir: Path | None
) -> dict[str, Any]:
    engine = _engine(settings, rate, state_dir)
    engine.start()
    await asyncio.sleep(WARMUP_S)
    probe = _Probe(engine)
    probe.start()
    await asyncio.sleep(seconds)
    result = probe.result()
    await engine.stop()
    _finish(engine)
    return result


def _finish(engine: LiveEngine) -> None:
    from engine.session import JournaledEngine

    if isinstance(engine, JournaledEngine):
        engine.finish("clean")


def _filled_history(engine: LiveEngine, hours: float) -> Any:
    """A session history already `hours` long (one made-up sample a second before the start):
    the charts then draw what a whole day's session gives them."""
    import math

    from engine.history import SessionHistory

    seconds = int(hours * 3600)
    history = SessionHistory(engine.sim0_ns - seconds * 1_000_000_000)
    for i in range(seconds):
        t = engine.sim0_ns - (seconds - i) * 1_000_000_000
        history.record(t, 50 * math.sin(i / 5000), 400 * math.sin(i / 777), None)
    return history


def _child_on(
    settings: Settings,
    rate: float,
    seconds: float,
    state_dir: Path | None,
    view: str,
    history_h: float = 0.0,
) -> dict[str, Any]:
    from tui.app import PerpdeskApp

    engine = _engine(settings, rate, state_dir)
    if history_h:
        engine.history = _filled_history(engine, history_h)
    app = PerpdeskApp(settings, engine, standalone=True, state_dir=state_dir)
    if view != "desk":
        app.call_later(app.action_show_view, view)
    probe = _Probe(engine)
    out: dict[str, Any] = {}

    def begin() -> None:
        probe.start()
        out["frames0"] = app.frames_drawn
        app.set_timer(seconds, finish)

    def finish() -> None:
        out.update(probe.result(frames_per_s=(app.frames_drawn - out["frames0"]) / seconds))
        app.call_later(app.action_quit)

    app.call_later(lambda: app.set_timer(WARMUP_S, begin))
    app.run(mouse=False)
    _finish(engine)
    out.pop("frames0", None)
    return out


def child_main(args: argparse.Namespace) -> None:
    settings = Settings(ui=UiSettings(fps=args.fps))
    with tempfile.TemporaryDirectory(prefix="perpdesk-bench-") as tmp:
        state_dir = Path(tmp) if args.journal else None
        if args.child == "off":
            result = asyncio.run(_child_off(settings, args.rate, args.seconds, state_dir))
        else:
            result = _child_on(
                settings, args.rate, args.seconds, state_dir, args.view, args.history_h
            )
    Path(args.out).write_text(json.dumps(result))


# ---- the parent: one process per mode ----------------------------------------------------------


def _child_cmd(mode: str, args: argparse.Namespace, out_path: str) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--fps",
        str(args.fps),
        "--view",
        args.view,
        "--history-h",
        str(args.history_h),
        "--out",
        out_path,
    ] + (["--journal"] if args.journal else [])


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out_path = tmp.name
    cmd = _child_cmd(mode, args, out_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERPDESK_", "TEXTUAL_"))}
    bytes_out = 0
    if mode == "off":
        subprocess.run(cmd, env=env, check=True, cwd=ROOT)
    else:
        cols, rows = args.size
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env.update(TERM="xterm-256color", COLORTERM="truecolor")
        proc = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True
        )
        os.close(slave)
        started = time.perf_counter()
        counting_from = started + WARMUP_S
        counted = 0
        while proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                now = time.perf_counter()
                if counting_from <= now <= counting_from + args.seconds:
                    counted += len(chunk)
                bytes_out += len(chunk)
        proc.wait()
        os.close(master)
        if proc.returncode:
            raise SystemExit(f"console child failed with exit status {proc.returncode}")
        bytes_out = counted
    result: dict[str, Any] = json.loads(Path(out_path).read_text())
    Path(out_path).unlink()
    result["term_kB_per_s"] = bytes_out / 1024 / args.seconds if mode == "on" else 0.0
    return result


def _size(text: str) -> tuple[int, int]:
    cols, rows = text.lower().split("x")
    return int(cols), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="market messages per second")
    parser.add_argument("--fps", type=float, default=UiSettings().fps, help="frames per second")
    parser.add_argument("--size", type=_size, default=(160, 50), help="terminal COLSxROWS")
    parser.add_argument("--view", choices=["desk", "pnl", "blotter", "alerts"], default="desk",
                        help="the console's view while measured")  # fmt: skip
    parser.add_argument("--journal", action="store_true", help="journal both modes (tmp dir)")
    parser.add_argument(
        "--history-h", type=float, default=0.0, help="a session history this many hours long"
    )
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    cols, rows = args.size
    print(
        f"ui bench: {args.rate:g} msg/s target, {args.seconds:g} s per mode after "
        f"{WARMUP_S:g} s warm-up, {args.fps:g} fps, {cols}x{rows} pty, view {args.view}"
        + (", journaled" if args.journal else "")
        + (f", {args.history_h:g} h of history" if args.history_h else "")
    )
    off = run_mode("off", args)
    on = run_mode("on", args)
    print(f"{'':24}{'screen off':>12}{'screen on':>12}")
    rows_out = [
        ("venue events/s", "events_per_s", "{:,.0f}"),
        ("process CPU, % of core", "cpu_share", "{:.1%}"),
        ("engine lag p50, ms", "lag_p50_ms", "{:.2f}"),
        ("engine lag p99, ms", "lag_p99_ms", "{:.2f}"),
        ("engine lag max, ms", "lag_max_ms", "{:.2f}"),
        ("engine wake-ups", "wakeups", "{:,}"),
    ]
    for label, key, form in rows_out:
        print(f"{label:<24}{form.format(off[key]):>12}{form.format(on[key]):>12}")
    print(f"{'frames drawn/s':<24}{'-':>12}{on['frames_per_s']:>12.1f}")
    print(f"{'terminal output, kB/s':<24}{'-':>12}{on['term_kB_per_s']:>12.1f}")
    screen_cpu = on["cpu_share"] - off["cpu_share"]
    added_lag = on["lag_p99_ms"] - off["lag_p99_ms"]
    print()
    print(f"screen cost: {screen_cpu:.1%} of one core (target < 20%): "
          f"{'OK' if screen_cpu < 0.20 else 'OVER'}")  # fmt: skip
    print(f"lag p99 added by the screen: {added_lag:+.2f} ms (target < 5 ms): "
          f"{'OK' if added_lag < 5 else 'OVER'}")  # fmt: skip
    cpu_ratio = on["cpu_share"] / off["cpu_share"] if off["cpu_share"] else float("inf")
    lag_ratio = on["lag_p99_ms"] / off["lag_p99_ms"] if off["lag_p99_ms"] else float("inf")
    print(f"ratios on/off: CPU x{cpu_ratio:.2f}, lag p99 x{lag_ratio:.2f}")


if __name__ == "__main__":
    main()
