"""What training uses, sampled at each logged step: this process's CPU and memory (psutil),
and each GPU's memory, utilisation, power and temperature through NVML (nvidia-ml-py) when
there are GPUs. A sample costs well under a millisecond; it never stops training."""

from __future__ import annotations

import psutil


class Sampler:
    def __init__(self):
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first reading starts the interval
        self.nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.nvml = pynvml
        except Exception:  # noqa: BLE001 - no driver, no GPU, no library: CPU figures only
            self.handles = []

    def sample(self) -> dict:
        out = {"cpu_percent": self.process.cpu_percent(None),
               "rss_mb": round(self.process.memory_info().rss / 1e6, 1)}
        gpus = []
        for i, handle in enumerate(self.handles):
            gpus.append(self._gpu(i, handle))
        if gpus:
            out["gpus"] = gpus
        return out

    def _gpu(self, index: int, handle) -> dict:
        n = self.nvml
        gpu = {"index": index}
        for key, read in (("memory", lambda: n.nvmlDeviceGetMemoryInfo(handle)),
                          ("utilization", lambda: n.nvmlDeviceGetUtilizationRates(handle).gpu),
                          ("power_w", lambda: n.nvmlDeviceGetPowerUsage(handle) / 1000),
                          ("temperature_c", lambda: n.nvmlDeviceGetTemperature(handle, n.NVML_TEMPERATURE_GPU))):
            try:
                value = read()
            except Exception:  # noqa: BLE001 - a reading a board does not offer is left out
                continue
            if key == "memory":
                gpu["memory_used_mb"], gpu["memory_total_mb"] = value.used / 1e6, value.total / 1e6
            else:
                gpu[key] = value
        return gpu
