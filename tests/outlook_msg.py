"""Build a small Outlook .msg (a MAPI message in a compound file) for the tests.

No library writes .msg files, and the shared corpora hold none, so this writes the
two layers by the book: an MS-CFB version 3 compound file (512-byte sectors, streams
under 4 KB in the mini stream) holding the MS-OXMSG streams Outlook itself writes
(a properties stream, string and binary ``__substg1.0_`` streams, one storage per
attachment).
"""

from __future__ import annotations

import struct

FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
SECTOR, MINI, CUTOFF = 512, 64, 4096


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b""):
        self.name, self.kind, self.data = name, kind, data
        self.children: list[_Entry] = []
        self.left = self.right = self.child = NOSTREAM
        self.start, self.size = END, len(data)


def _key(entry: _Entry) -> tuple[int, str]:
    # Siblings are ordered by name length first, then by upper-cased name (MS-CFB 2.6.4).
    return len(entry.name), entry.name.upper()


def compound_file(tree: dict) -> bytes:
    """``tree``: name -> bytes (a stream) or dict (a storage)."""
    root = _Entry("Root Entry", 5)
    entries = [root]

    def add(parent: _Entry, items: dict) -> None:
        for name, value in items.items():
            entry = _Entry(name, 1 if isinstance(value, dict) else 2,
                           b"" if isinstance(value, dict) else value)
            parent.children.append(entry)
            entries.append(entry)
            if isinstance(value, dict):
                add(entry, value)

    add(root, tree)
    index = {id(e): n for n, e in enumerate(entries)}
    for entry in entries:  # a right-leaning chain of siblings is a valid (if unbalanced) tree
        kids = sorted(entry.children, key=_key)
        if kids:
            entry.child = index[id(kids[0])]
            for a, b in zip(kids, kids[1:], strict=False):
                a.right = index[id(b)]

    sectors: list[bytes] = []
    fat: dict[int, int] = {}

    def chain(data: bytes) -> int:
        if not data:
            return END
        first = len(sectors)
        count = (len(data) + SECTOR - 1) // SECTOR
        for n in range(count):
            sectors.append(data[n * SECTOR:(n + 1) * SECTOR].ljust(SECTOR, b"\0"))
            fat[first + n] = first + n + 1 if n + 1 < count else END
        return first

    mini_stream, mini_fat = bytearray(), []
    for entry in entries[1:]:
        if entry.kind != 2 or not entry.data:
            entry.start = END if entry.kind == 2 else 0
            continue
        if len(entry.data) >= CUTOFF:
            entry.start = chain(entry.data)
        else:
            first = len(mini_fat)
            count = (len(entry.data) + MINI - 1) // MINI
            mini_stream += entry.data.ljust(count * MINI, b"\0")
            mini_fat += [first + n + 1 if n + 1 < count else END for n in range(count)]
            entry.start = first
    root.start, root.size = (chain(bytes(mini_stream)), len(mini_stream)) if mini_stream \
        else (END, 0)
    mini_fat_start = chain(b"".join(struct.pack("<I", v) for v in mini_fat))
    mini_fat_sectors = (len(mini_fat) * 4 + SECTOR - 1) // SECTOR

    directory = b""
    for entry in entries:
        name = entry.name.encode("utf-16-le") + b"\0\0"
        directory += (name.ljust(64, b"\0") + struct.pack("<HBB", len(name), entry.kind, 1)
                      + struct.pack("<III", entry.left, entry.right, entry.child)
                      + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
                      + struct.pack("<IQ", entry.start, entry.size))
    directory_start = chain(directory.ljust(-(-len(directory) // SECTOR) * SECTOR, b"\0"))

    fat_count = 1
    while (len(sectors) + fat_count) > fat_count * (SECTOR // 4):
        fat_count += 1
    fat_start = len(sectors)
    for n in range(fat_count):
        fat[fat_start + n] = FATSECT
    table = [fat.get(n, FREE) for n in range(fat_count * (SECTOR // 4))]
    fat_bytes = b"".join(struct.pack("<I", v) for v in table)
    for n in range(fat_count):
        sectors.append(fat_bytes[n * SECTOR:(n + 1) * SECTOR])
    assert fat_count <= 109
    difat = [fat_start + n for n in range(fat_count)] + [FREE] * (109 - fat_count)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, fat_count, directory_start, 0, CUTOFF,
                            mini_fat_start if mini_fat else END, mini_fat_sectors, END, 0)
              + b"".join(struct.pack("<I", v) for v in difat))
    assert len(header) == SECTOR
    return header + b"".join(sectors)


def _properties(header: bytes, fixed: dict[int, tuple[int, bytes]],
                variable: dict[int, bytes]) -> bytes:
    out = header
    for tag, (_type, value) in fixed.items():
        out += struct.pack("<II", tag, 6) + value.ljust(8, b"\0")
    for tag, value in variable.items():
        out += struct.pack("<IIII", tag, 6, len(value) + (2 if tag & 0xFFFF == 0x1F else 0), 0)
    return out


def _strings(props: dict[int, str]) -> dict[str, bytes]:
    return {f"__substg1.0_{tag:08X}": text.encode("utf-16-le") for tag, text in props.items()}


def outlook_msg(*, subject: str, body: str, sender: str, sender_name: str, to: str,
                files: list[tuple[str, bytes]] = ()) -> bytes:
    """A sent Outlook message with these fields and attached files."""
    strings = {0x001A001F: "IPM.Note", 0x0037001F: subject, 0x1000001F: body,
               0x0C1A001F: sender_name, 0x0C1F001F: sender, 0x0E04001F: to,
               0x0042001F: sender_name, 0x0065001F: sender}
    tree: dict = {
        "__nameid_version1.0": {"__substg1.0_00020102": b"", "__substg1.0_00030102": b"",
                                "__substg1.0_00040102": b""},
        **_strings(strings),
    }
    for n, (name, data) in enumerate(files):
        attach_strings = {0x3707001F: name, 0x3704001F: name[:12], 0x3703001F:
                          "." + name.rpartition(".")[2]}
        attachment = {**_strings(attach_strings), "__substg1.0_37010102": data}
        attachment["__properties_version1.0"] = _properties(
            b"\0" * 8, {0x37050003: (3, struct.pack("<I", 1)),  # attach method: by value
                        0x0E210003: (3, struct.pack("<I", n))},
            {**{tag: t.encode("utf-16-le") for tag, t in attach_strings.items()},
             0x37010102: data})
        tree[f"__attach_version1.0_#{n:08X}"] = attachment
    header = struct.pack("<8sIIII8s", b"\0" * 8, 0, len(files), 0, len(files), b"\0" * 8)
    tree["__properties_version1.0"] = _properties(
        header, {0x0E070003: (3, struct.pack("<I", 1))},  # message flags: read
        {tag: t.encode("utf-16-le") for tag, t in strings.items()})
    return compound_file(tree)
