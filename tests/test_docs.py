"""The documentation's code runs, and prints what the page says it prints.

Every ```` ```python ```` block of every Markdown page (``README.md`` and ``docs/*.md``)
runs alone, in a fresh module namespace, as a reader who copies just that block would run
it. A block that builds on an earlier one says so on its first line, where the reader
sees it::

    # continues "Shaping: wait your turn"

names the heading of the section whose last python block (before this one) it continues:
that block (and whatever it continues, in turn) runs first in the same fresh namespace,
its output unchecked, then this one. What a block prints is checked against the page in
two ways:

* **A trailing comment on a ``print(...)`` call is its output**::

      print(bucket.status().remaining)  # 7.0

  Each time that call runs (top level, in a loop, inside a function or coroutine), its
  output must equal the comment. The comment may go on with an explanation after
  ``": "``, ``" : "`` or ``" ("``: ``# 0.0 : fourth still counts on its unit`` expects
  ``0.0``. A ``print`` that has a comment on its closing line must print it: a comment
  that describes the output instead of showing it fails the test, and so does one on a
  call that never runs.
* **A ```` ```text ```` block right after a python block is that block's whole output**
  (only blank lines and ``doc-test`` markers may stand between them). A text block after
  prose is a picture or a diagram, and is not checked.

In both, ``...`` stands for any text within a line (as doctest's ``ELLIPSIS``), for
values that change from run to run (addresses, real durations). Trailing spaces and
blank lines at the end do not count.

Markers, HTML comments on the line(s) just before a block (invisible in Sphinx, MyST and
on GitHub alike):

* ``<!-- doc-test: skip (why) -->`` before a python block: do not run it (say why, for
  example that it needs a Redis server);
* ``<!-- doc-test: not-output -->`` before a text block that directly follows a python
  block but is not its output;
* ``<!-- doc-test: tolerance=0.1 (why) -->`` before a python block: every number in its
  outputs (inline and text block) may differ from the page by up to 0.1, for output
  measured in real time. Prefer a ``FakeClock`` in examples, which needs none.

Pages listed in ``SKIPPED_PAGES`` are not run here (with the reason). A page with no
python block is simply not collected.

``docs/cli.md`` shows commands, not Python: each ```` ```sh ```` block of one
``python3 -m limitor ...`` line followed by a ```` ```text ```` block, and each
```` ```console ```` line ``$ python3 -m limitor ...`` followed by its lines (stderr), is
run through ``limitor.__main__.main`` and must print what the page shows (the live
demo's block runs on a virtual clock, to 0.01 s; the ``traffic.csv`` it replays is the
text block that starts with ``time,``).

The ``>>>`` examples in the package's docstrings (shown in the API reference) run as
doctests, module by module.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import io
import pkgutil
import re
import sys
import tokenize
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

SKIPPED_PAGES: dict[str, str] = {}

_FENCE = re.compile(r"^```([\w{}-]*)[ \t]*$")
_MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_EXPLANATION = re.compile(r" ?: | \(")  # where an explanation may start in a comment
_CONTINUES = re.compile(r'# continues "([^"\n]+)"')
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$")


@dataclass
class Block:
    """One fenced block of a page."""

    language: str
    text: str
    line: int  # the line of the opening fence, 1-based
    markers: list[str] = field(default_factory=list)
    output: Block | None = None  # for a python block: the text block that is its output
    heading: str = ""  # the heading of the section it is in

    @property
    def continues(self) -> str | None:
        """The heading named by a first line ``# continues "Heading"``, if any."""
        match = _CONTINUES.match(self.text)
        return match.group(1) if match else None

    @property
    def skipped(self) -> bool:
        return any(marker.startswith("skip") for marker in self.markers)


def _blocks(page: Path) -> list[Block]:
    """The page's fenced blocks, with their markers, python blocks linked to outputs."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    markers: list[str] = []
    after_python: Block | None = None  # the python block the next text block may follow
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        marker = _MARKER.match(line)
        title = _HEADING.match(line)
        if title:
            heading = title.group(1)
        if marker:
            markers.append(marker.group(1))
        elif fence and fence.group(1):
            start = index
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                index += 1
            block = Block(fence.group(1), "\n".join(lines[start + 1 : index]), start + 1, markers)
            block.heading = heading
            blocks.append(block)
            is_output = block.language == "text" and "not-output" not in block.markers
            if is_output and after_python is not None:
                after_python.output = block
            after_python = block if block.language == "python" else None
            markers = []
        elif line.strip():
            markers = []
            after_python = None
        index += 1
    return blocks


def _tolerance(block: Block) -> float:
    for marker in block.markers:
        if marker.startswith("tolerance="):
            return float(marker.removeprefix("tolerance=").split()[0])
    return 0.0


def _matches(expected: str, actual: str, tolerance: float) -> bool:
    """``actual`` reads as ``expected``, with ``...`` and number tolerance."""
    pattern = []
    numbers: list[float] = []
    for piece in re.split(rf"(\.\.\.|{_NUMBER})", expected):
        if piece == "...":
            pattern.append(r"[^\n]*?")
        elif tolerance and piece and re.fullmatch(_NUMBER, piece):
            pattern.append(f"({_NUMBER})")
            numbers.append(float(piece))
        else:
            pattern.append(re.escape(piece))
    found = re.fullmatch("".join(pattern), actual)
    if found is None:
        return False
    return all(
        abs(float(got) - want) <= tolerance + 1e-9
        for got, want in zip(found.groups(), numbers, strict=True)
    )


def _comment_matches(comment: str, actual: str, tolerance: float) -> bool:
    """``actual`` is the comment, or the comment up to where an explanation starts."""
    candidates = [comment] + [comment[: m.start()] for m in _EXPLANATION.finditer(comment)]
    return any(_matches(candidate.rstrip(), actual, tolerance) for candidate in candidates)


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _comments(source: str) -> dict[int, str]:
    """Line number (1-based, in ``source``) -> the text of the comment ending that line."""
    result: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            result[token.start[0]] = token.string.removeprefix("#").strip()
    return result


class _RecordPrints(ast.NodeTransformer):
    """Turn ``print(...)`` calls that end on a commented line into recorded prints."""

    def __init__(self, commented: set[int]) -> None:
        self.commented = commented
        self.found: set[int] = set()

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        end = node.end_lineno
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "print"
            and end in self.commented
            and end not in self.found
        ):
            self.found.add(end)
            node.func = ast.Name("__doc_print__", ast.Load())
            node.args.insert(0, ast.Constant(end))
        return node


@dataclass
class _Outcome:
    """What one python block printed."""

    stdout: str
    prints: dict[int, list[str]]  # commented print line -> each output it printed


def _run(block: Block, namespace: dict[str, Any], filename: str) -> _Outcome:
    comments = _comments(block.text)
    tree = ast.parse(block.text, filename)
    recorder = _RecordPrints(set(comments))
    tree = ast.fix_missing_locations(recorder.visit(tree))
    ast.increment_lineno(tree, block.line)  # tracebacks point into the page
    prints: dict[int, list[str]] = {line: [] for line in recorder.found}
    stdout = io.StringIO()

    def doc_print(line: int, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("file", None)
        captured = io.StringIO()
        print(*args, file=captured, **kwargs)
        prints[line].append(captured.getvalue())
        stdout.write(captured.getvalue())

    namespace["__doc_print__"] = doc_print
    with contextlib.redirect_stdout(stdout):
        exec(compile(tree, filename, "exec", dont_inherit=True), namespace)
    return _Outcome(stdout.getvalue(), prints)


def _pages() -> Iterator[Any]:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        name = page.relative_to(ROOT).as_posix()
        if any(block.language == "python" for block in _blocks(page)):
            marks = [pytest.mark.skip(reason=SKIPPED_PAGES[name])] if name in SKIPPED_PAGES else []
            yield pytest.param(page, id=name, marks=marks)


def _chain(blocks: list[Block], block: Block, name: str) -> list[Block]:
    """``block``, after the blocks it continues (oldest first)."""
    chain = [block]
    while (heading := chain[0].continues) is not None:
        earlier = [
            other
            for other in blocks[: blocks.index(chain[0])]
            if other.language == "python" and not other.skipped and other.heading == heading
        ]
        assert earlier, (
            f"{name}:{chain[0].line}: continues {heading!r}, but no runnable python block "
            "comes before it under that heading"
        )
        chain.insert(0, earlier[-1])
    return chain


@pytest.mark.parametrize("page", list(_pages()))
def test_page_code_runs_and_prints_what_the_page_says(page: Path) -> None:
    name = page.relative_to(ROOT).as_posix()
    problems: list[str] = []
    blocks = _blocks(page)
    for block in blocks:
        if block.language != "python" or block.skipped:
            continue
        module = types.ModuleType(f"docs_page_{page.stem.replace('-', '_')}_{block.line}")
        sys.modules[module.__name__] = module  # dataclasses and pickling look modules up
        try:
            *before, _ = _chain(blocks, block, name)
            for earlier in before:
                _run(earlier, module.__dict__, str(page))
            try:
                outcome = _run(block, module.__dict__, str(page))
            except Exception as error:
                hint = "" if before else ' (if it builds on an earlier block: # continues "...")'
                problems.append(f"{name}:{block.line}: alone, it raised {error!r}{hint}")
                continue
        finally:
            del sys.modules[module.__name__]
        tolerance = _tolerance(block)
        comments = _comments(block.text)
        for line, outputs in sorted(outcome.prints.items()):
            where = f"{name}:{block.line + line}"
            if not outputs:
                problems.append(f"{where}: this print never ran: {comments[line]!r}")
            for output in outputs:
                if not _comment_matches(comments[line], _normalise(output), tolerance):
                    problems.append(
                        f"{where}: printed {_normalise(output)!r}, "
                        f"the comment says {comments[line]!r}"
                    )
        if block.output is not None:
            expected, actual = _normalise(block.output.text), _normalise(outcome.stdout)
            if not _matches(expected, actual, tolerance):
                problems.append(
                    f"{name}:{block.output.line}: the block above printed\n{actual}\n"
                    f"--- but the page shows\n{expected}"
                )
    assert not problems, "\n\n".join(problems)


def _modules() -> Iterator[str]:
    import limitor

    yield "limitor"
    for info in pkgutil.walk_packages(limitor.__path__, "limitor."):
        yield info.name


@pytest.mark.parametrize("name", list(_modules()))
def test_docstring_examples_print_what_they_say(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:  # an optional extra that is not installed
        if (error.name or "").startswith("limitor"):
            raise
        pytest.skip(f"{name} needs {error.name}")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        if test.lineno is None or test.filename == module.__file__:  # not re-exported ones
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_harness_reads_outputs_as_documented() -> None:
    assert _comment_matches("0.0 : fourth still counts on its unit", "0.0", 0)
    assert _comment_matches("True: one limit for all clients", "True", 0)
    assert _comment_matches("12 calls in 0.5 s (at least 0.5 s)", "12 calls in 0.5 s", 0)
    assert _comment_matches(
        "{'tokens': 1500.0} {'tokens': 360.0}", "{'tokens': 1500.0} {'tokens': 360.0}", 0
    )
    assert not _comment_matches("10", "1", 0)
    assert not _comment_matches("7880.0", "7892.0", 0)
    assert _matches("in ... real seconds", "in 0.02 real seconds", 0)
    assert not _matches("in ... real seconds", "in 0.02 real\nseconds", 0)
    assert _matches("page 4 at +0.2 s", "page 4 at +0.3 s", 0.1)
    assert not _matches("page 4 at +0.2 s", "page 4 at +0.4 s", 0.1)
    assert not _matches("page 4 at +0.2 s", "page 5 at +0.2 s", 0)


# -- docs/cli.md: the commands print what the page shows ---------------------------------

_CLI = "python3 -m limitor "


@dataclass
class _Command:
    line: int
    argv: list[str]
    expected: str
    stderr: bool = False


def _fences(page: Path) -> list[tuple[str, int, list[str], int]]:
    """Each fenced block: (language, line of its first body line, body, index after it)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match and match.group(1):
            end = index + 1
            while lines[end].rstrip() != "```":
                end += 1
            found.append((match.group(1), index + 2, lines[index + 1 : end], end + 1))
            index = end + 1
        else:
            index += 1
    return found


def _cli_commands(page: Path) -> tuple[list[_Command], dict[str, str]]:
    import shlex

    lines = page.read_text(encoding="utf-8").splitlines()
    fences = _fences(page)
    commands: list[_Command] = []
    files: dict[str, str] = {}
    for number, (language, line, body, after) in enumerate(fences):
        if language == "text" and body and body[0].startswith("time,"):
            files["traffic.csv"] = "\n".join(body) + "\n"
        if language == "sh" and len(body) == 1 and body[0].startswith(_CLI):
            argv = shlex.split(body[0].removeprefix(_CLI))
            following = fences[number + 1] if number + 1 < len(fences) else None
            adjacent = following is not None and all(
                not text.strip() for text in lines[after : following[1] - 2]
            )
            if argv == ["demo"] and following is not None and following[0] == "text":
                commands.append(_Command(line, [*argv, "--virtual"], "\n".join(following[2])))
            elif adjacent and following is not None and following[0] == "text":
                commands.append(_Command(line, argv, "\n".join(following[2])))
            else:
                raise AssertionError(f"{page.name}:{line}: a command with no output under it")
        if language == "console":
            for offset, text in enumerate(body):
                if text.startswith("$ "):
                    output = []
                    for rest in body[offset + 1 :]:
                        if rest.startswith("$ "):
                            break
                        output.append(rest)
                    assert text.startswith("$ " + _CLI), text
                    argv = shlex.split(text.removeprefix("$ " + _CLI))
                    commands.append(_Command(line + offset, argv, "\n".join(output), stderr=True))
    return commands, files


def test_the_command_line_page_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limitor import __main__ as cli

    page = ROOT / "docs" / "cli.md"
    commands, files = _cli_commands(page)
    assert len(commands) >= 8  # every example on the page, found
    assert "traffic.csv" in files
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "unsorted.csv").write_text("time\n0\n1.5\n1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_prog", lambda: "python -m limitor")
    problems = []
    for command in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            status = cli.main(command.argv, out=out)
        actual = _normalise((err if command.stderr else out).getvalue())
        expected = _normalise(command.expected)
        tolerance = 0.0
        if command.argv[0] == "demo":  # measured on the page, exact here
            tolerance = 0.01
            # its bars of dots are not ellipses; its ticker only ticks in real time
            actual, expected = (
                re.sub(r"[.#]{6,}", lambda bar: bar.group().replace(".", "_"), text)
                for text in (actual, expected)
            )
            expected = re.sub(r"\n  meanwhile a ticker task ran \d+ times", "", expected)
        if status != (2 if command.stderr else 0) or not _matches(expected, actual, tolerance):
            problems.append(
                f"cli.md:{command.line}: {' '.join(command.argv)} (status {status}) printed\n"
                f"{actual}\n--- but the page shows\n{expected}"
            )
    assert not problems, "\n\n".join(problems)
