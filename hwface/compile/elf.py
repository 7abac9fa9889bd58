"""Reading the architecture of a shared object from its ELF header (no tools needed)."""

from __future__ import annotations

import platform
import struct
from pathlib import Path

from hwface.errors import HwfaceError

# e_machine values of the ELF specification.
_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x28: "arm", 0x03: "x86", 0xF3: "riscv"}
_HOST_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def elf_machine(path: str | Path) -> str:
    """Architecture an ELF file was built for (``x86_64``, ``aarch64``, ...).

    Raises
    ------
    HwfaceError
        When the file is not an ELF shared object.
    """
    head = Path(path).read_bytes()[:20]
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise HwfaceError(f"{path} is not an ELF file")
    little = head[5] == 1
    e_type, e_machine = struct.unpack("<HH" if little else ">HH", head[16:20])
    if e_type != 3:  # ET_DYN
        raise HwfaceError(f"{path} is an ELF file but not a shared object (e_type={e_type})")
    return _MACHINES.get(e_machine, f"unknown({e_machine:#x})")


def host_machine() -> str:
    """This machine's architecture in :func:`elf_machine`'s names."""
    m = platform.machine().lower()
    return _HOST_ALIASES.get(m, m)


def triple_machine(triple: str) -> str:
    """Architecture part of an LLVM triple, in :func:`elf_machine`'s names."""
    arch = triple.split("-", 1)[0].lower()
    return _HOST_ALIASES.get(arch, arch)
