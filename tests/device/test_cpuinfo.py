"""``edge-rcnn devices`` on ARM: the CPU named from /proc/cpuinfo, its int8-relevant features, the board.

Real cpuinfo texts (abridged to the fields read) of the boards we target; no emulation needed.
"""

from __future__ import annotations

import pytest

from runtimes.devices import CpuInfo, RuntimeInfo, parse_cpuinfo, read_cpu, runtime_uses


def _arm(part: str, features: str, cores: int = 4, implementer: str = "0x41", extra: str = "") -> str:
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: " + features +
             f"\nCPU implementer\t: {implementer}\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\n"
             "CPU revision\t: 3\n")
    return "\n".join(block.format(i=i) for i in range(cores)) + "\n" + extra


PI4 = _arm("0xd08", "fp asimd evtstrm crc32 cpuid",
           extra="Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
PI5 = _arm("0xd0b", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
           extra="Revision\t: c04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n")
PI4_32BIT = ("processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\n"
             "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\n"
             "CPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
             "Model\t\t: Raspberry Pi 4 Model B Rev 1.5\n")
RK3588 = (_arm("0xd05", "fp asimd asimdhp asimddp", cores=4) + "\n" +
          _arm("0xd0b", "fp asimd asimdhp asimddp", cores=4))
JETSON_XAVIER = _arm("0x004", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm dcpop",
                     implementer="0x4e")
X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t\t: fpu avx2\n\n"


@pytest.mark.parametrize("text, model, expected", [
    (PI4, None, CpuInfo("Cortex-A72", ("neon",), "Raspberry Pi 4 Model B Rev 1.4")),
    (PI4, "Raspberry Pi 4 Model B Rev 1.2\x00", CpuInfo("Cortex-A72", ("neon",), "Raspberry Pi 4 Model B Rev 1.2")),
    (PI5, "Raspberry Pi 5 Model B Rev 1.0\x00", CpuInfo("Cortex-A76", ("neon", "dotprod", "fp16"), "Raspberry Pi 5 Model B Rev 1.0")),
    (PI4_32BIT, None, CpuInfo("Cortex-A72", ("neon",), "Raspberry Pi 4 Model B Rev 1.5")),
    (RK3588, "Radxa ROCK 5B\x00", CpuInfo("4x Cortex-A55 + 4x Cortex-A76", ("neon", "dotprod", "fp16"), "Radxa ROCK 5B")),
    (JETSON_XAVIER, "Jetson-AGX\x00", CpuInfo("NVIDIA Carmel", ("neon", "fp16"), "Jetson-AGX")),
    (_arm("0xfff", "fp asimd", cores=1), None, CpuInfo("ARM core 0x41:0xfff", ("neon",), None)),
    (X86, None, CpuInfo("Intel(R) Xeon(R) CPU @ 2.20GHz", (), None)),
    ("", None, CpuInfo("", (), None)),
    ("garbage\x00\xff without fields\n\n::\n", "", CpuInfo("", (), None)),
])
def test_parse_cpuinfo(text, model, expected):
    assert parse_cpuinfo(text, model) == expected


def test_cpu_line_names_core_features_and_board():
    assert parse_cpuinfo(PI5, "Raspberry Pi 5 Model B Rev 1.0\x00").line() == (
        "Cortex-A76 with neon, dotprod, fp16 on a Raspberry Pi 5 Model B Rev 1.0")
    assert CpuInfo("", (), None).line() == "unknown CPU"


def test_read_cpu_from_files_and_missing_files(tmp_path):
    (tmp_path / "cpuinfo").write_text(PI4)
    (tmp_path / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    assert read_cpu(tmp_path / "cpuinfo", tmp_path / "model") == CpuInfo("Cortex-A72", ("neon",), "Raspberry Pi 4 Model B Rev 1.4")
    assert read_cpu(tmp_path / "none", tmp_path / "none") == CpuInfo("", (), None)


def test_runtime_uses_names_the_package_and_provider():
    found = (RuntimeInfo("litert", "ai-edge-litert", "2.3.0"), RuntimeInfo("onnxruntime", "onnxruntime-gpu", "1.20.0"))
    assert runtime_uses(found, ("CUDAExecutionProvider", "CPUExecutionProvider"), ()) == (
        ".tflite: ai-edge-litert 2.3.0 (XNNPACK, CPU)", ".onnx: onnxruntime-gpu 1.20.0 (CUDAExecutionProvider)")
    none = (RuntimeInfo("litert", None, None), RuntimeInfo("onnxruntime", None, None))
    assert runtime_uses(none, (), ()) == ()
