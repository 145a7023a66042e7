#!/usr/bin/env python3
"""GPU check of jouleflow's NVML source on a real NVIDIA GPU (run through scripts/gpu-check.sh).

Needs: Python 3 with pynvml (nvidia-ml-py) and torch (CUDA), and the payload made by
scripts/prepare-gpu-check.sh in .device/ (a Node binary and the exporter bundle): the machine
needs no Node of its own.

What it does:
  1. unpacks Node and the exporter into a temporary folder;
  2. starts `node exporter/dist/main.js serve` with only the NVML source, sampling every 1 s,
     against the machine's real libnvidia-ml.so.1, log level debug;
  3. at a tick boundary (the exported gpu0 counter has just changed) reads the NVML energy counter
     itself with pynvml: the start point;
  4. runs a torch bf16 matmul load in phases (idle, full, half duty, idle) in a child process;
  5. at the next tick boundary after the load, reads the counter again: the end point;
  6. prints exported GPU joules vs the counter delta, the error, the exporter's CPU use, the NVML
     read time and /metrics latency, and whether the exporter saw the load's process on the GPU.
Writes gpu-check.json and exporter.log to $OUT (or --out).
"""
import argparse
import json
import lzma
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOAD = r"""
import json, sys, time, torch
phases = json.loads(sys.argv[1])
dev = torch.device('cuda:0')
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
torch.cuda.synchronize()
print(json.dumps({'event': 'ready', 't': time.time()}), flush=True)
for name, seconds, duty in phases:
    print(json.dumps({'event': 'phase', 'name': name, 't': time.time(), 'duty': duty}), flush=True)
    end = time.time() + seconds
    while time.time() < end:
        if duty <= 0:
            time.sleep(min(0.1, max(0.0, end - time.time())))
            continue
        w0 = time.time()
        while time.time() - w0 < 0.2 * duty:
            for _ in range(4):
                c = a @ b
            torch.cuda.synchronize()
        rest = 0.2 - (time.time() - w0)
        if rest > 0:
            time.sleep(rest)
print(json.dumps({'event': 'done', 't': time.time()}), flush=True)
"""

PHASES = [["idle", 5, 0], ["full", 20, 1.0], ["half", 15, 0.5], ["idle", 8, 0]]


def log(msg):
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unpack(work):
    dev = os.path.join(ROOT, ".device")
    node = os.path.join(work, "node")
    with lzma.open(os.path.join(dev, "node.xz")) as src, open(node, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(node, 0o755)
    with tarfile.open(os.path.join(dev, "exporter.tar.xz"), "r:xz") as tar:
        # The "data" filter (Python >= 3.11.4/3.12) where there is one: no warning, no unsafe paths.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, filter="data")
        else:
            tar.extractall(work)
    return node, os.path.join(work, "exporter", "dist", "main.js")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return text, time.perf_counter() - t0


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
            found = True
    return total if found else None


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_env(nvml, handle):
    """Environment for the torch load: its cuda:0 must be NVML's GPU 0, the one measured as gpu0.

    CUDA orders devices fastest-first and honours CUDA_VISIBLE_DEVICES, NVML goes by PCI bus, so
    on a multi-GPU host cuda:0 can be another GPU. Pin it by UUID, except in MIG mode (CUDA then
    wants a MIG instance UUID; the default first instance lies on GPU 0 when it is the only one).
    """
    env = dict(os.environ, CUDA_DEVICE_ORDER="PCI_BUS_ID")
    try:
        mig = nvml.nvmlDeviceGetMigMode(handle)[0]
    except Exception:  # NVMLError_NotSupported: not MIG-capable
        mig = 0
    if not mig:
        uuid = nvml.nvmlDeviceGetUUID(handle)
        env["CUDA_VISIBLE_DEVICES"] = uuid.decode() if isinstance(uuid, bytes) else uuid
    return env


def tick_boundary(url, nvml, handle, timeout=10.0):
    """Waits until the exported gpu0 counter changes (a tick just happened), then reads NVML."""
    text, _ = scrape(url)
    before = metric(text, "jouleflow_node_energy_joules_total", source="nvml", device="gpu0")
    end = time.time() + timeout
    while time.time() < end:
        time.sleep(0.02)
        text, _ = scrape(url)
        now = metric(text, "jouleflow_node_energy_joules_total", source="nvml", device="gpu0")
        if now is not None and now != before:
            mj = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return {"exported_j": now, "counter_mj": mj, "t": time.time()}
    raise RuntimeError("the exported gpu0 energy did not change within %.0f s" % timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(ROOT, "test", "artifacts", "gpu-check"))
    ap.add_argument("--library", default="libnvidia-ml.so.1")
    ap.add_argument("--no-load", action="store_true", help="skip the torch load (idle only)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    name = pynvml.nvmlDeviceGetName(handle)
    name = name.decode() if isinstance(name, bytes) else name
    driver = pynvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else driver
    log(f"GPU 0: {name}, driver {driver}, {pynvml.nvmlDeviceGetCount()} GPU(s)")

    work = tempfile.mkdtemp(prefix="jouleflow-gpu-check-")
    node, main_js = unpack(work)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    cfg = os.path.join(work, "config.yaml")
    with open(cfg, "w") as f:
        f.write(
            "sources: {rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: true}\n"
            f"web: {{listenAddress: '127.0.0.1:{port}'}}\n"
            "sample: {interval: 1s}\n"
            "log: {level: debug}\n"
            f"nvml: {{library: '{args.library}'}}\n"
            # No SQLite ledger: the default /var/lib/jouleflow/jobs.db would be created on the device machine.
            "jobs: {ledger: ''}\n"
        )
    exporter_log = os.path.join(args.out, "exporter.log")
    logf = open(exporter_log, "w")
    exp = subprocess.Popen([node, main_js, "serve", "--config.file", cfg], stdout=logf, stderr=subprocess.STDOUT)
    result = {"gpu": name, "driver": driver, "node": subprocess.run([node, "-v"], capture_output=True, text=True).stdout.strip()}
    try:
        deadline = time.time() + 30
        while True:
            if exp.poll() is not None:
                raise RuntimeError(f"exporter exited with {exp.returncode}; see {exporter_log}")
            try:
                text, _ = scrape(url)
                if metric(text, "jouleflow_source_up", reader="nvml", device="gpu0") == 1:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"NVML source not up within 30 s; see {exporter_log}")
            time.sleep(0.2)
        log("exporter up, NVML source up")

        start = tick_boundary(url, pynvml, handle)
        cpu0, wall0 = proc_cpu_seconds(exp.pid), time.time()
        load_pid, phases = None, []
        if not args.no_load:
            log("running the torch load: " + ", ".join(f"{n} {s}s" for n, s, _ in PHASES))
            load = subprocess.Popen([sys.executable, "-c", LOAD, json.dumps(PHASES)], stdout=subprocess.PIPE, text=True, env=load_env(pynvml, handle))
            load_pid = load.pid
            latencies = []
            for line in load.stdout:
                try:
                    phases.append(json.loads(line))
                except ValueError:
                    continue
                _, dt = scrape(url)
                latencies.append(dt)
            load.wait()
            if load.returncode != 0:
                raise RuntimeError(f"torch load failed with {load.returncode}")
        else:
            time.sleep(20)
        time.sleep(2)
        lat = []
        for _ in range(20):
            _, dt = scrape(url)
            lat.append(dt)
            time.sleep(0.05)
        end = tick_boundary(url, pynvml, handle)
        cpu1, wall1 = proc_cpu_seconds(exp.pid), time.time()
        text, _ = scrape(url)

        exported = end["exported_j"] - start["exported_j"]
        counter = (end["counter_mj"] - start["counter_mj"]) / 1000.0
        n = metric(text, "jouleflow_sample_duration_seconds_count", reader="nvml") or 0
        s = metric(text, "jouleflow_sample_duration_seconds_sum", reader="nvml") or 0
        with open(exporter_log) as f:
            exp_log = f.read()
        saw_load = bool(load_pid and re.search(rf"GPU processes changed.*\b{load_pid}\(mem=", exp_log))
        lat.sort()
        result.update(
            {
                "seconds": round(end["t"] - start["t"], 2),
                "exported_gpu_joules": round(exported, 3),
                "nvml_counter_delta_joules": round(counter, 3),
                "error_percent": round((exported - counter) / counter * 100, 4) if counter else None,
                "mean_power_watts": round(counter / (end["t"] - start["t"]), 1),
                "exporter_cpu_percent": round((cpu1 - cpu0) / (wall1 - wall0) * 100, 3),
                "nvml_read_mean_ms": round(s / n * 1000, 3) if n else None,
                "metrics_latency_p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                "counter_resets": metric(text, "jouleflow_source_errors_total", reader="nvml", reason="counter_reset") or 0,
                "nvml_timeouts": metric(text, "jouleflow_source_errors_total", reader="nvml", reason="timeout") or 0,
                "load_pid": load_pid,
                "exporter_saw_load_process": saw_load,
                "phases": phases,
            }
        )
    finally:
        exp.terminate()
        try:
            exp.wait(timeout=15)
        except subprocess.TimeoutExpired:
            exp.kill()
        logf.close()
        pynvml.nvmlShutdown()
        shutil.rmtree(work, ignore_errors=True)

    with open(os.path.join(args.out, "gpu-check.json"), "w") as f:
        json.dump(result, f, indent=1)
    rows = [
        ("GPU", f"{result['gpu']} (driver {result['driver']})"),
        ("window", f"{result['seconds']} s, mean {result['mean_power_watts']} W"),
        ("exported GPU energy", f"{result['exported_gpu_joules']:.1f} J"),
        ("NVML counter delta (pynvml)", f"{result['nvml_counter_delta_joules']:.1f} J"),
        ("error", f"{result['error_percent']} %"),
        ("exporter CPU", f"{result['exporter_cpu_percent']} % of one core"),
        ("NVML read per tick (mean)", f"{result['nvml_read_mean_ms']} ms"),
        ("/metrics latency p50", f"{result['metrics_latency_p50_ms']} ms"),
        ("counter resets / timeouts", f"{result['counter_resets']:.0f} / {result['nvml_timeouts']:.0f}"),
        ("exporter saw the load's pid", f"{result['exporter_saw_load_process']} (pid {result['load_pid']})"),
    ]
    w = max(len(k) for k, _ in rows)
    print("| " + "check".ljust(w) + " | result |")
    print("|" + "-" * (w + 2) + "|--------|")
    for k, v in rows:
        print("| " + k.ljust(w) + " | " + v + " |")
    ok = result["error_percent"] is not None and abs(result["error_percent"]) < 0.5
    print("RESULT:", "PASS" if ok else "CHECK", "(|error| < 0.5 % expected)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
