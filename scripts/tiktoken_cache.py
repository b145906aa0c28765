"""Put tiktoken's o200k_base encoding in its cache, for machines that cannot reach its host.

Inspect AI counts tokens with tiktoken's o200k_base, which tiktoken downloads on first use
from openaipublic.blob.core.windows.net. Where only the package registries are reachable
(as in CI), this rebuilds the file from the npm package ``tiktoken`` (which carries the
same ranks, compressed), checks it against the SHA-256 that tiktoken itself expects, and
writes it where tiktoken looks: ``$TIKTOKEN_CACHE_DIR``, else ``<tmp>/data-gym-cache``.

    python scripts/tiktoken_cache.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # tiktoken_ext.openai_public
NPM_PACKAGE = "tiktoken@1.0.22"
MEMBER = "package/encoders/o200k_base.json"


def cache_path() -> Path:
    root = os.environ.get("TIKTOKEN_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(root) / hashlib.sha1(URL.encode()).hexdigest()


def ranks_text(bpe_ranks: str) -> str:
    """The .tiktoken file from the npm form: ``! <rank> <token> <token> ...``, ranks counting up."""
    lines, rank = [], 0
    parts = bpe_ranks.split(" ")
    i = 0
    while i < len(parts):
        if parts[i] == "!":
            rank, i = int(parts[i + 1]), i + 2
            continue
        lines.append(f"{parts[i]} {rank}")
        rank, i = rank + 1, i + 1
    return "\n".join(lines) + "\n"


def main() -> int:
    target = cache_path()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        print(f"o200k_base is cached: {target}")
        return 0
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", work], check=True)
        (tarball,) = Path(work).glob("tiktoken-*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            assert member is not None
            encoder = json.load(member)
    data = ranks_text(encoder["bpe_ranks"]).encode()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        print(f"o200k_base rebuilt from {NPM_PACKAGE} has SHA-256 {digest}, not {SHA256}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"o200k_base cached: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
