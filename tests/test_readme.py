"""The README's checkable claims: the files and pages it names exist (anchors included), every ``algm-export``
flag shown in README.md and docs/*.md is one the command line accepts, the two commands are the ones CI runs,
and the output-folder tables name files the code writes. Reads text and builds the argparse parsers only:
nothing runs, nothing imports torch."""

from __future__ import annotations

import ast
import fnmatch
import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from algm_export import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
OUTPUT_TABLES = [(README, "The output folder"), (ROOT / "docs" / "output-folder.md", "The output folder")]
CI_SCRIPT = ROOT / ".ci" / "run"
# Paths the README may name before they exist: written by README command 1 (make_sample_checkpoint.py).
GENERATED = ("samples/checkpoints/",)
TOP_FOLDERS = ("algm_export", "plugins", "samples", "calibration", "docs", "tools", "tests", ".ci")
PATH_PATTERN = re.compile(r"(?<![\w/.-])((?:%s)/[\w./*-]*[\w*/])" % "|".join(re.escape(f) for f in TOP_FOLDERS))
LINK_PATTERN = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
PLACEHOLDER_SECTION = "More commands"
# Subcommand names the README lists as coming (the "More commands" placeholders); any other lower-case first
# word is read as MODEL, as the command line reads it.
PENDING_WORDS = ("triton", "serve", "eval")


def section(text: str, title: str) -> str:
    """The text under the first heading (any level) that starts with ``title``, up to the next heading of the
    same or a higher level; under a plain paragraph starting with ``title``, up to the next heading."""
    heading = re.search(rf"^(#+) {re.escape(title)}.*$", text, re.M)
    if heading:
        level = len(heading.group(1))
        rest = text[heading.end():]
        end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
        return rest[: end.start() if end else len(rest)]
    paragraph = re.search(rf"^{re.escape(title)}.*$", text, re.M)
    assert paragraph, f"no section {title!r}"
    rest = text[paragraph.start():]
    end = re.search(r"^#+ ", rest, re.M)
    return rest[: end.start() if end else len(rest)]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    text = FENCE.sub("", page.read_text())
    found = set()
    for title in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


# ---------------------------------------------------------------------------------------------------------
# command examples


@dataclass(frozen=True)
class Example:
    """One ``algm-export`` command shown in a page: where, the subcommand, the words after it."""

    page: str
    text: str
    command: str | None  # None: a subcommand that does not exist (yet)
    words: tuple[str, ...]


def command_lines(text: str) -> list[str]:
    """Candidate command texts: every line of a fenced block (continuations joined) and every code span."""
    lines = []
    for block in FENCE.findall(text):
        lines += block.replace("\\\n", " ").splitlines()
    lines += CODE_SPAN.findall(FENCE.sub("", text))
    return lines


def examples(page: Path, text: str | None = None) -> list[Example]:
    """The ``algm-export`` / ``python -m algm_export`` commands in ``text`` (default: the page's text)."""
    found = []
    for line in command_lines(page.read_text() if text is None else text):
        line = re.sub(r"^\s*\$\s*", "", line)
        for part in re.split(r"\s(?:&&|\|\||;|\|)\s", line):
            part = re.split(r"\s#\s", part)[0]  # a trailing shell comment
            try:
                words = shlex.split(part)
            except ValueError:
                words = part.split()
            words = [w.rstrip(",;:") if w.startswith("-") else w for w in words]
            if "algm-export" in words:
                rest, default = words[words.index("algm-export") + 1:], cli.DEFAULT_COMMAND
            elif words[:2] == ["python", "-m"] and len(words) > 2 and words[2] in ("algm_export", "algm_export.bench"):
                rest, default = words[3:], "bench" if words[2] == "algm_export.bench" else cli.DEFAULT_COMMAND
            else:
                continue
            if rest and rest[0].endswith(":"):  # a message quoted in prose (`algm-export predict: error: ...`)
                continue
            command = default
            if default == cli.DEFAULT_COMMAND and rest and re.fullmatch(r"[a-z]+", rest[0]):
                if rest[0] in cli.COMMANDS:
                    command, rest = rest[0], rest[1:]
                elif rest[0] in PENDING_WORDS:
                    command, rest = None, rest[1:]
            found.append(Example(page.relative_to(ROOT).as_posix(), part.strip(), command, tuple(rest)))
    return found


def flags(words: tuple[str, ...]) -> list[str]:
    """The option words: ``--flag``, ``-o``, ``[--flag`` -> ``--flag``, ``--flag=value`` -> ``--flag``."""
    options = []
    for word in words:
        word = word.strip("[]()")
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word):
            options.append(word.split("=")[0])
    return options


def unknown_flags(example: Example) -> list[str]:
    """The flags of ``example`` its subcommand's parser does not define (argparse keeps them, ``--help``
    included, in ``_option_string_actions``; it has no public accessor)."""
    parser = subparsers()[example.command]
    return [flag for flag in flags(example.words) if flag not in parser._option_string_actions]


def subparsers() -> dict:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def placeholders() -> list[tuple[str, list[Example], list[str]]]:
    """Each bullet of the README's "More commands" list: its text, its commands and the pages it links."""
    bullets = re.findall(r"^- (.+)$", section(README.read_text(), PLACEHOLDER_SECTION), re.M)
    assert bullets, "the README has no 'More commands' list"
    return [(bullet, examples(README, f"`{'` `'.join(CODE_SPAN.findall(bullet))}`"), LINK_PATTERN.findall(bullet))
            for bullet in bullets]


def available(example: Example) -> bool:
    """Whether the subcommand exists and takes every flag shown."""
    return example.command is not None and not unknown_flags(example)


def pending_paths() -> set[str]:
    """The pages linked from placeholder bullets whose commands do not exist yet: they may be missing."""
    return {link for _, commands, links in placeholders() if not all(map(available, commands)) for link in links}


def placeholder_texts() -> set[str]:
    return {example.text for _, commands, _ in placeholders() for example in commands}


# ---------------------------------------------------------------------------------------------------------
# tests


def test_readme_is_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; reference material belongs under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_test_counts(page):
    """Test counts go stale with every test added; the pages never state them."""
    counts = re.findall(r"\b\d+ (?:tests|passed|failed|skipped)\b", page.read_text())
    assert not counts, f"{page.relative_to(ROOT)} states test counts: {counts}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_resolve(page):
    """Every relative link of the page names an existing file, and an anchor one of the target's headings
    (links of placeholder commands that do not exist yet excepted)."""
    pending = pending_paths() if page == README else set()
    broken = []
    for link in LINK_PATTERN.findall(page.read_text()):
        if re.match(r"[a-z]+:", link) or link in pending:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading with anchor #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_paths_exist(page):
    """Every repository path the page names (``algm_export/...``, ``docs/...``, ``samples/...`` ...) exists."""
    pending = pending_paths() if page == README else set()
    missing = []
    for path in sorted(set(PATH_PATTERN.findall(page.read_text()))):
        if path in pending or path.startswith(GENERATED):
            continue
        if not (list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()):
            missing.append(path)
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


def all_examples() -> list[Example]:
    placeholder = placeholder_texts()
    return [e for page in PAGES for e in examples(page) if not (page == README and e.text in placeholder)]


def test_examples_are_found():
    """The extraction itself: the README's quick start and the CLI page give commands of every subcommand."""
    commands = {e.command for e in all_examples()}
    assert set(cli.COMMANDS) <= commands, f"no example of {set(cli.COMMANDS) - commands}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_example_flags_are_accepted(page):
    """Every flag in the page's command examples is defined by its subcommand's parser; a subcommand that does
    not exist is an error outside the README's "More commands" placeholders."""
    placeholder = placeholder_texts() if page == README else set()
    wrong = []
    for example in examples(page):
        if example.text in placeholder:
            continue
        if example.command is None:
            wrong.append(f"{example.text!r}: no such subcommand")
        elif unknown_flags(example):
            wrong.append(f"{example.text!r}: {example.command} has no {', '.join(unknown_flags(example))}")
    assert not wrong, f"{page.relative_to(ROOT)}: " + "; ".join(wrong)


def test_quick_start_parses():
    """The README's quick-start commands parse completely (values included) with the real parser."""
    block = FENCE.findall(section(README.read_text(), "Quick start"))
    assert block, "no code block in the quick start"
    commands = examples(README, "```\n" + block[0] + "```\n")
    assert len(commands) >= 3
    for example in commands:
        words = list(example.words) if example.command == cli.DEFAULT_COMMAND else [example.command, *example.words]
        cli.parse_arguments(words)  # raises UsageError (a test failure) on a bad flag or value


@pytest.mark.parametrize("index", range(len(placeholders())))
def test_placeholder_commands(index):
    """A "More commands" entry whose subcommand exists must parse and link an existing page; one that does
    not exist yet is skipped, saying so."""
    bullet, commands, links = placeholders()[index]
    assert commands and links, f"placeholder {bullet!r} needs a command and a page"
    pending = [e.text for e in commands if not available(e)]
    if pending:
        pytest.skip(f"not implemented yet: {', '.join(pending)} (README 'More commands' placeholder)")
    missing = [link for link in links if not (README.parent / link).exists()]
    assert not missing, f"{bullet!r}: the command exists, its page {missing} must too"


def test_readme_commands_are_the_ci_commands():
    """The two commands under "Two commands" are, verbatim, lines that .ci/run runs."""
    blocks = FENCE.findall(section(README.read_text(), "Two commands"))
    assert blocks, "no code block under 'Two commands'"
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(commands) == 2, commands
    ci_lines = {line.strip() for line in CI_SCRIPT.read_text().splitlines()}
    for command in commands:
        assert command in ci_lines, f"{command!r} is not run by .ci/run"


def string_literals() -> set[str]:
    """Every string constant in the package's (and the calibration package's) source."""
    found = set()
    for path in [*(ROOT / "algm_export").rglob("*.py"), *(ROOT / "calibration").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def artifact_files() -> set[str]:
    """The file names ``algm_export/artifacts.py`` defines (module-level string constants such as
    ``PORTABLE_GRAPH = "model.onnx"``; suffixes like ``.json`` are not file names)."""
    tree = ast.parse((ROOT / "algm_export" / "artifacts.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
            value = node.value.value
            if isinstance(value, str) and re.fullmatch(r"[\w-][\w.-]*\.(onnx|plan|json|cache|npz)", value):
                names.add(value)
    return names


def table_files(page: Path, title: str) -> set[str]:
    """The file names in the first column of the first table under ``title``."""
    lines = section(page.read_text(), title).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    rows = [line for line in itertools.takewhile(lambda line: line.startswith("|"), lines[start:])]
    assert len(rows) > 2, f"{page.name}: no table under {title!r}"
    names = set()
    for row in rows[2:]:
        for name in CODE_SPAN.findall(row.split("|")[1]):
            if not name.startswith("."):  # `.json`: the sidecar suffix
                names.add(name.rstrip("/"))
    return names


@pytest.mark.parametrize("page,title", OUTPUT_TABLES, ids=lambda v: v.name if isinstance(v, Path) else None)
def test_output_table_names_the_files_written(page, title):
    """Every name in the output-folder table is one the code writes (a string constant of the package, or a
    pattern matching one), and every file name ``artifacts.py`` defines is in the table."""
    names = table_files(page, title)
    literals = string_literals()
    unknown = [n for n in sorted(names) if not (fnmatch.filter(literals, n) if "*" in n else n in literals)]
    assert not unknown, f"{page.name}: the table lists files the code never names: {unknown}"
    listed = [a for a in sorted(artifact_files()) if not any(fnmatch.fnmatch(a, n) for n in names)]
    assert not listed, f"{page.name}: artifacts.py defines files the table does not list: {listed}"
