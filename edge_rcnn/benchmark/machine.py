"""The machine a benchmark ran on: CPU model, cores, SIMD flags, clock, runtime versions, load.

Read from ``/proc/cpuinfo`` (Linux) and ``importlib.metadata`` (no package is imported), so it is
cheap and safe to call anywhere. ``peak_int8_macs`` estimates the CPU's int8 multiply-accumulate
peak from cores x GHz x MACs per cycle per core for the best int8 dot-product instruction the
flags show; the per-ISA numbers are assumptions stated in ``INT8_MACS_PER_CYCLE``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtimes.base import package_version

# Flags that decide int8/float kernel speed (x86 and Arm names as /proc/cpuinfo spells them).
INTERESTING_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "sve2", "neon",
)
# int8 MACs per cycle per core, best instruction first, with the assumption behind each number.
INT8_MACS_PER_CYCLE = (
    ("amx_int8", 1024, "AMX TMUL: 1024 int8 MAC/cycle per core"),
    ("avx512_vnni", 64, "AVX-512 VNNI: one 512-bit VPDPBUSD per cycle = 64 int8 MAC/cycle per core "
                        "(cores with two 512-bit FMA units can issue two: 128)"),
    ("avx_vnni", 32, "AVX-VNNI: one 256-bit VPDPBUSD per cycle = 32 int8 MAC/cycle per core"),
    ("avx2", 32, "AVX2: VPMADDUBSW+VPMADDWD, ~32 int8 MAC/cycle per core"),
    ("i8mm", 64, "Arm I8MM: SMMLA, ~64 int8 MAC/cycle per core (2 x 128-bit pipes)"),
    ("asimddp", 32, "Arm dot product: SDOT, 16 MAC per 128-bit instruction, 2 pipes = 32 per core"),
    ("asimd", 16, "Arm NEON: SMLAL on int16 lanes, ~16 int8 MAC/cycle per core"),
    ("neon", 16, "Arm NEON: SMLAL on int16 lanes, ~16 int8 MAC/cycle per core"),
)
VERSIONED = ("numpy", "tensorflow", "tf-keras", "ai-edge-litert", "tflite-runtime", "onnxruntime", "onnx",
             "tf2onnx", "opencv-python-headless", "matplotlib")


@dataclass(frozen=True)
class PeakEstimate:
    macs_per_s: float | None
    cores: int
    ghz: float | None
    macs_per_cycle_per_core: int | None
    assumption: str


@dataclass(frozen=True)
class MachineInfo:
    cpu: str
    machine: str
    system: str
    logical_cpus: int
    physical_cores: int | None
    mhz: float | None
    flags: tuple[str, ...]
    python: str
    versions: dict[str, str] = field(default_factory=dict)
    loadavg: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        d["loadavg"] = list(self.loadavg) if self.loadavg else None
        return d

    def summary(self) -> str:
        mhz = f" @ {self.mhz / 1000:.2f} GHz" if self.mhz else ""
        flags = " ".join(self.flags) or "no SIMD flags read"
        load = f"; load {self.loadavg[0]:.2f}" if self.loadavg else ""
        return f"{self.cpu}{mhz}, {self.logical_cpus} logical CPUs ({self.machine}); {flags}{load}"


def read_cpuinfo(path: str | Path = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's ``key: value`` lines (empty where there is no such file)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key and key not in out:
            out[key] = value.strip()
    return out


def _mhz(info: dict[str, str]) -> float | None:
    for source in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",):
        try:
            return int(Path(source).read_text().strip()) / 1000.0  # kHz -> MHz
        except (OSError, ValueError):
            pass
    try:
        return float(info["cpu mhz"])
    except (KeyError, ValueError):
        return None


def package_versions(names=VERSIONED) -> dict[str, str]:
    return {name: version for name in names if (version := package_version(name))}


def machine_info(cpuinfo: str | Path = "/proc/cpuinfo") -> MachineInfo:
    info = read_cpuinfo(cpuinfo)
    flags = set((info.get("flags") or info.get("features") or "").split())
    cpu = info.get("model name") or info.get("hardware") or info.get("cpu model") or platform.processor() or "unknown"
    cores = info.get("cpu cores")
    try:
        loadavg = tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        loadavg = None
    return MachineInfo(
        cpu=cpu, machine=platform.machine(), system=platform.platform(terse=True),
        logical_cpus=os.cpu_count() or 1, physical_cores=int(cores) if cores and cores.isdigit() else None,
        mhz=_mhz(info), flags=tuple(f for f in INTERESTING_FLAGS if f in flags),
        python=platform.python_version(), versions=package_versions(), loadavg=loadavg,
    )


def peak_int8_macs(machine: MachineInfo, cores: int | None = None) -> PeakEstimate:
    """cores x GHz x int8 MAC/cycle/core for the best int8 instruction in ``machine.flags``."""
    cores = cores or machine.logical_cpus
    ghz = machine.mhz / 1000 if machine.mhz else None
    for flag, per_cycle, why in INT8_MACS_PER_CYCLE:
        if flag in machine.flags:
            if not ghz:
                return PeakEstimate(None, cores, None, per_cycle, f"{why}; clock unknown")
            return PeakEstimate(cores * ghz * 1e9 * per_cycle, cores, ghz, per_cycle,
                                f"{why}; {cores} cores (logical CPUs) x {ghz:.2f} GHz")
    return PeakEstimate(None, cores, ghz, None, "no known int8 dot-product flag in /proc/cpuinfo")
