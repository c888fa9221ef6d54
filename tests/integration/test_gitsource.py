"""git_source checkouts from a real repository made in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sluice import gitsource
from sluice.errors import SluiceError
from sluice.gitsource import RepositoryCheckoutError, checkout


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository with main (v1, v2), tag v1 on the first commit, and a feature branch."""
    root = tmp_path_factory.mktemp("origin")
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "job.py").write_text("print('v1')\n")
    git(root, "add", "job.py")
    git(root, "commit", "--quiet", "-m", "v1")
    first = git(root, "rev-parse", "HEAD")
    git(root, "tag", "v1")
    (root / "job.py").write_text("print('v2')\n")
    git(root, "commit", "--quiet", "-am", "v2")
    second = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "--quiet", "-b", "feature")
    (root / "job.py").write_text("print('feature')\n")
    git(root, "commit", "--quiet", "-am", "feature")
    feature = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "--quiet", "main")
    return {"url": str(root), "first": first, "second": second, "feature": feature}


def content(dest: Path) -> str:
    return (dest / "job.py").read_text()


def test_default_branch(repo: dict[str, str], tmp_path: Path) -> None:
    sha = checkout(repo["url"], dest=tmp_path / "co")
    assert sha == repo["second"]
    assert content(tmp_path / "co") == "print('v2')\n"


def test_branch(repo: dict[str, str], tmp_path: Path) -> None:
    assert checkout(repo["url"], branch="feature", dest=tmp_path / "co") == repo["feature"]
    assert content(tmp_path / "co") == "print('feature')\n"


def test_tag(repo: dict[str, str], tmp_path: Path) -> None:
    assert checkout(repo["url"], tag="v1", dest=tmp_path / "co") == repo["first"]
    assert content(tmp_path / "co") == "print('v1')\n"


@pytest.mark.parametrize("length", [40, 10])
def test_commit_full_or_abbreviated(repo: dict[str, str], tmp_path: Path, length: int) -> None:
    assert checkout(repo["url"], commit=repo["first"][:length], dest=tmp_path / "co") == repo["first"]
    assert content(tmp_path / "co") == "print('v1')\n"


def test_file_url_is_cloned_shallow(repo: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "co"
    assert checkout(f"file://{repo['url']}", branch="main", dest=dest) == repo["second"]
    assert git(dest, "rev-list", "--count", "HEAD") == "1"


def test_commit_over_a_url_is_fetched_alone(repo: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "co"
    assert checkout(f"file://{repo['url']}", commit=repo["first"], dest=dest) == repo["first"]
    assert content(dest) == "print('v1')\n"


def test_an_existing_empty_directory_is_fine(repo: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "co"
    dest.mkdir()
    assert checkout(repo["url"], dest=dest) == repo["second"]


def test_bad_url_names_it(tmp_path: Path) -> None:
    dest = tmp_path / "co"
    with pytest.raises(RepositoryCheckoutError) as info:
        checkout(str(tmp_path / "no-such-repo"), branch="main", dest=dest)
    message = str(info.value)
    assert message.startswith(f"could not check out branch 'main' of {tmp_path / 'no-such-repo'}: ")
    assert "does not exist" in message
    assert isinstance(info.value, SluiceError)
    assert info.value.git_url == str(tmp_path / "no-such-repo")
    assert not dest.exists()


@pytest.mark.parametrize(
    ("kwargs", "described"),
    [
        ({"branch": "nope"}, "branch 'nope'"),
        ({"tag": "v9"}, "tag 'v9'"),
        (
            {"commit": "0123456789abcdef0123456789abcdef01234567"},
            "commit '0123456789abcdef0123456789abcdef01234567'",
        ),
        ({"commit": "deadbeef"}, "commit 'deadbeef'"),
    ],
)
def test_bad_revision_names_it_and_leaves_nothing(
    repo: dict[str, str], tmp_path: Path, kwargs: dict[str, str], described: str
) -> None:
    dest = tmp_path / "co"
    with pytest.raises(
        RepositoryCheckoutError, match=f"could not check out {described} of {repo['url']}"
    ) as info:
        checkout(
            repo["url"],
            dest=dest,
            branch=kwargs.get("branch"),
            tag=kwargs.get("tag"),
            commit=kwargs.get("commit"),
        )
    assert info.value.revision == next(iter(kwargs.values()))
    assert not dest.exists()


def test_bad_commit_over_a_url_leaves_an_existing_directory_empty(
    repo: dict[str, str], tmp_path: Path
) -> None:
    dest = tmp_path / "co"
    dest.mkdir()
    with pytest.raises(RepositoryCheckoutError, match="could not check out commit"):
        checkout(f"file://{repo['url']}", commit="0" * 40, dest=dest)
    assert dest.is_dir()
    assert list(dest.iterdir()) == []


def test_only_one_revision(repo: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(
        RepositoryCheckoutError, match="give one of git_branch, git_tag, git_commit, not branch and tag"
    ):
        checkout(repo["url"], branch="main", tag="v1", dest=tmp_path / "co")


def test_a_non_empty_destination_is_refused(repo: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "co"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(RepositoryCheckoutError, match="the directory is not empty"):
        checkout(repo["url"], dest=dest)
    assert (dest / "keep.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------ option injection


def injected(marker: Path) -> str:
    """An ``--upload-pack`` option that creates ``marker`` if git ever runs it (``#`` comments out the rest
    of the shell command git builds; ``://`` makes the text look like a remote URL)."""
    return f"--upload-pack=touch {marker};#://x"


def test_a_url_that_is_an_option_is_refused_and_runs_nothing(repo: dict[str, str], tmp_path: Path) -> None:
    marker, dest = tmp_path / "pwned", tmp_path / "co"
    for revision in ({"commit": repo["first"]}, {"branch": "main"}, {}):
        with pytest.raises(RepositoryCheckoutError) as info:
            checkout(
                injected(marker), dest=dest, branch=revision.get("branch"), commit=revision.get("commit")
            )
        assert "git_source.git_url: " in str(info.value)
        assert "it begins with '-', which git would read as an option" in str(info.value)
        assert not marker.exists()
        assert not dest.exists()


@pytest.mark.parametrize("kind", ["branch", "tag", "commit"])
def test_a_revision_that_is_an_option_is_refused(repo: dict[str, str], tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    evil = f"--upload-pack=touch {marker}"
    revision = {"branch": None, "tag": None, "commit": None, kind: evil}
    with pytest.raises(RepositoryCheckoutError, match=f"git_source.git_{kind}: '--upload-pack"):
        checkout(
            repo["url"],
            dest=tmp_path / "co",
            branch=revision["branch"],
            tag=revision["tag"],
            commit=revision["commit"],
        )
    assert not marker.exists()


def test_git_reads_a_dash_ref_as_a_ref_not_an_option(repo: dict[str, str], tmp_path: Path) -> None:
    """Below the checks: the commands themselves hand git URLs after ``--`` and refs as option values, so
    even a ``-``-prefixed value that got past them is a name git looks up, never an option it obeys."""
    marker = tmp_path / "pwned"
    with pytest.raises(gitsource._GitFailed, match=r"Remote branch --upload-pack=touch .* not found"):
        gitsource._clone(repo["url"], f"--upload-pack=touch {marker}", tmp_path / "a", 60)
    with pytest.raises(gitsource._GitFailed, match=r"protocol '--upload-pack=touch .*' is not supported"):
        gitsource._checkout_commit(injected(marker), repo["first"], tmp_path / "b", 60)
    with pytest.raises(gitsource._GitFailed, match="commit '--output=x' is not in the repository"):
        gitsource._checkout_commit(repo["url"], "--output=x", tmp_path / "c", 60)
    assert not marker.exists()
