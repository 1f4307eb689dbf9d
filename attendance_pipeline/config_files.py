"""Reading the files people edit by hand in `config/` (plain Python, no Dagster).

CSV files are often saved by Excel on Chinese Windows, as GBK: every CSV is read as UTF-8 (with or
without the BOM Excel writes) or, when that fails, as GB18030 (a superset of GBK), with CRLF or LF
line ends; the encoding used is logged. A file that is neither (UTF-16, binary) is refused with
the file and line, before anything runs.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration file is wrong; the message names the file, line and field."""


def decode_config_text(path: Path) -> tuple[str, str]:
    """(the file's text with LF line ends, the encoding it was read as)."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        line = data[: max(data.find(b"\x00"), 0)].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line}: the file is UTF-16 or binary; save it as UTF-8 (in Excel: "
            "CSV UTF-8) or as GBK"
        )
    try:
        text, encoding = data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as utf8:
        try:
            text, encoding = data.decode("gb18030"), "GBK/GB18030"
        except UnicodeDecodeError:
            line = data[: utf8.start].count(b"\n") + 1
            byte = data[utf8.start : utf8.start + 1].hex()
            raise ConfigError(
                f"{path} line {line}: the text is neither UTF-8 nor GBK/GB18030 (byte 0x{byte}); "
                "save it as UTF-8 (in Excel: CSV UTF-8)"
            ) from None
    log.info("read %s as %s", path, encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def open_config_csv(path: Path) -> io.StringIO:
    """The CSV's text, decoded as `decode_config_text` says, ready for `csv.DictReader`."""
    text, _ = decode_config_text(path)
    return io.StringIO(text, newline="")
