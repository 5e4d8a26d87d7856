"""Mutation testing of the Harbor providers and their API client against the provider tests (issue 20).

Not part of CI: it runs provider tests once per mutant, several hundred mutants (the result says how
long the last run took). Each mutant is one small change to one
module of components/harbor/ (an operator swapped, a boolean flipped, a number moved by one, a call
dropped, a return emptied); the provider tests run against it in a copy of the repository (real
provider host over gRPC, Harbor emulator), and the mutant is *killed* when they fail (or time out),
*survived* when they pass. Every survivor is either a missing test or an equivalent mutant (a change
no behaviour can tell), explained in EQUIVALENT below and in the result.

    venv/bin/python scripts/mutation_providers.py                      # every mutant, 2 at a time
    venv/bin/python scripts/mutation_providers.py --rerun-survivors    # survivors again, today's tests
    venv/bin/python scripts/mutation_providers.py --only components/harbor/api.py:11
    venv/bin/python scripts/mutation_providers.py --list               # the mutants, without running
    venv/bin/python scripts/mutation_providers.py --merge-progress ../wt-other/mutants/progress.jsonl

What keeps a full run short (a naive one, each module's test selection per mutant, is ~9 hours):
- Coverage: once, the unmutated tests run with scripts/mutation_trace on PYTHONPATH, a line tracer
  that every Python process loads (the provider hosts the tests start included) and that records
  which test executes which line of the modules (mutants/coverage-*.json, per version of the
  modules and per test file with what it imports from tests/). A mutant inside a function body then runs only the tests that
  execute its lines (a test that never reaches the change runs exactly as without it); one no
  test executes is a survivor without running. A site that runs at import and binds a name (a
  module constant, a class attribute such as FIELDS, a dataclass field's default, a decorated
  class) runs the tests that execute a line reading that name and some function of its module; a
  default argument, the tests that execute that function; any other, the module's whole
  selection (MODULES).
- Order: the selected tests run with `-x`, those that killed most mutants per second first.
- Phase 2: a mutant that survives its covering tests runs again with the module's whole
  selection (plus tests/harbor/test_provider_edges.py) before it counts as a survivor, so the
  narrowing never turns a kill into a survivor: it only saves time. Until then the result lists it
  as "survived its covering tests" (not counted as killed).
- Two worker copies, under `nice -n 10` (start it so). Each outcome is appended to
  mutants/progress.jsonl as it finishes; a stopped run continues where it left off.

The tracer is our own (no dependency): coverage.py writes its data at exit, which a provider host
ended with SIGKILL (tests/standins/provider_host.py `close`) never reaches. The result is committed
as tests/data/mutation_providers.json (with the commit it ran on). A small AST mutator of our own
rather than mutmut: mutmut runs tests in its own copy with trampolines that the separate
provider-host process (`python -m pulumi.dynamic`, which imports the providers by module path)
would not see.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "tests" / "data" / "mutation_providers.json"
DRIFT = "tests/harbor/test_provider_drift.py"
HOST = "tests/harbor/test_provider_host.py"
ROBOT = "tests/harbor/test_robot_provider.py"
EDGES = "tests/harbor/test_provider_edges.py"
MONITOR = "tests/harbor/test_monitor_robot.py"
# Every provider test: the coverage map is recorded over these.
TESTS = [DRIFT, HOST, ROBOT, MONITOR, EDGES]
# Each module with the tests that concern it (pytest arguments).
MODULES: dict[str, list[str]] = {
    "components/harbor/registry.py": [DRIFT, HOST, "-k", "registry or url or upstream or docker_hub or adopt"],
    "components/harbor/project.py": [DRIFT, HOST, "-k", "project or retention or settings_missing or limits or metadata"],
    "components/harbor/oidc.py": [DRIFT, HOST, "-k", "oidc"],
    "components/harbor/gc_schedule.py": [DRIFT, HOST, "-k", "gc"],
    "components/harbor/robot.py": [DRIFT, ROBOT, MONITOR, "-k", "robot or secret or create or check"],
    "components/harbor/system_settings.py": [DRIFT, "-k", "settings"],
    "components/harbor/provider_base.py": [DRIFT, HOST, "-k", "registry or gc or lost or preview or check or import"],
    "components/harbor/api.py": [
        HOST,
        DRIFT,
        "-k",
        "retr or 500 or tls or lookups or lost or post or unhealthy or wrong or lifecycle or quota",
    ],
}
# Resource classes (what the program registers) are exercised by the mocks tests, not by the
# provider host: mutants inside them are out of this script's scope. So are the program-side
# helpers of provider_base.py that build those resources' inputs and options
# (tests/harbor/test_config_mocks.py checks their secrets).
SKIPPED_CLASS_BASES = ("Resource",)
SKIPPED_NAMES = ("HarborConnection", "with_secret_outputs")

# Survivors that no behaviour can tell from the original, by (module, change, source line): why.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (
        "components/harbor/provider_base.py",
        "True -> False",
        "@dataclass(frozen=True)",
    ): "no code assigns to a Field or HarborConnection: frozen or not, the same behaviour",
    (
        "components/harbor/api.py",
        "True -> False",
        "@dataclass(frozen=True)",
    ): "no code assigns to a Response's fields or hashes one (unfrozen, a dataclass with eq has no hash): the same behaviour",
    (
        "components/harbor/provider_base.py",
        "return None",
        "return error",
    ): "the base explain() is never reached: the two providers that create through create_or_adopt override it",
    (
        "components/harbor/api.py",
        "1 -> 2",
        'return self.headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]',
    ): "rsplit's maxsplit 1 or 2: the last segment, the only one used, is the same",
    (
        "components/harbor/robot.py",
        "True -> False",
        "seen_system = True",
    ): "Harbor shows at most one system '/' permission: it groups a robot's policies by scope "
    "(src/controller/robot/controller.go populatePermissions), so no second one reaches the guard",
    (
        "components/harbor/provider_base.py",
        "return None",
        "return []",
    ): "the base validate() is never reached: every HarborProvider subclass overrides it (the robot has its own check)",
    # robot.py 56 and 80: docs/mutation-equivalents-mut-b.md says why, in full.
    (
        "components/harbor/robot.py",
        "1 -> 2",
        'duration=harbor_robot.get("duration", -1),',
    ): "Harbor always shows a robot's duration: ToSwagger sets Duration to &r.Duration, a non-nil pointer "
    "(handler/model/robot.go; x-nullable), so the key is in every GET and list answer and the default is never used",
    (
        "components/harbor/robot.py",
        "Or -> And",
        'robot_id = int(created.get("id") or answer.location_id())',
    ): "CreateRobot answers the id twice, in RobotCreated.id and in Location .../robots/<id>, both created.ID "
    "(a serial, never 0; handler/robot.go CreateRobot): either operand gives the same id",
    (
        "components/harbor/project.py",
        "0 -> 1",
        'return quota_gb((quotas[0].get("hard") or {}).get("storage", 0))',
    ): "Harbor never shows a project quota without hard.storage: CreateProject makes the quota with the storage "
    "limit (handler/project.go) and every PUT /quotas/{id} must carry it (handler/quota.go UpdateQuota -> "
    "controller/quota/driver/project/project.go Validate: 'resource storage not found'); and were it absent, "
    "0 and 1 byte both read as a limit no input equals (0 GB, 1/1024**3 GB)",
}


@dataclass
class Mutant:
    module: str
    index: int
    line: int
    change: str
    source: str
    end_line: int = 0
    # Inside a function's body: runs only when the function is called, so only the tests that execute
    # its lines can tell it. Elsewhere (a decorator, a default, a class attribute) it runs at import,
    # and every test that imports the module may depend on it.
    in_body: bool = False
    outcome: str = ""
    seconds: float = 0.0
    explanation: str = ""
    # How the tests were chosen ("covering: N tests", "module: N tests", "none executes it") and,
    # for a kill, the test that failed first.
    selection: str = ""
    killed_by: str = ""


class Sites(ast.NodeTransformer):
    """Finds every mutation site; with `apply` set, makes the change at that one site only."""

    SWAPS = {
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
        ast.Lt: ast.GtE,
        ast.GtE: ast.Lt,
        ast.Gt: ast.LtE,
        ast.LtE: ast.Gt,
        ast.In: ast.NotIn,
        ast.NotIn: ast.In,
        ast.Is: ast.IsNot,
        ast.IsNot: ast.Is,
    }

    def __init__(self, apply: int | None = None) -> None:
        self.apply = apply
        self.found: list[tuple[int, int, str]] = []

    def _site(self, node: ast.AST, change: str) -> bool:
        index = len(self.found)
        line = getattr(node, "lineno", 0)
        self.found.append((line, getattr(node, "end_lineno", None) or line, change))
        return index == self.apply

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:  # noqa: N802
        bases = [ast.unparse(base) for base in node.bases]
        if any(base.endswith(SKIPPED_CLASS_BASES) for base in bases) or node.name in SKIPPED_NAMES:
            return node
        return self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802
        return node if node.name in SKIPPED_NAMES else self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> ast.AST:  # noqa: N802
        if isinstance(node.value, ast.Constant):  # docstrings
            return node
        if isinstance(node.value, ast.Call) and self._site(node, f"drop the call `{ast.unparse(node)[:60]}`"):
            return ast.Pass()
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        for position, operator in enumerate(node.ops):
            swap = self.SWAPS.get(type(operator))
            if swap and self._site(node, f"{type(operator).__name__} -> {swap.__name__}"):
                node.ops[position] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._site(node, f"{type(node.op).__name__} -> {other.__name__}"):
            node.op = other()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._site(node, "drop `not`"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:  # noqa: N802
        if isinstance(node.value, bool):
            if self._site(node, f"{node.value} -> {not node.value}"):
                return ast.copy_location(ast.Constant(not node.value), node)
        elif isinstance(node.value, int) and self._site(node, f"{node.value} -> {node.value + 1}"):
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        returns_something = node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        if returns_something and self._site(node, "return None"):
            return ast.copy_location(ast.Return(ast.Constant(None)), node)
        return node


def function_bodies(tree: ast.AST) -> list[tuple[int, int]]:
    """The line ranges of every function's (and lambda's) body."""
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ranges.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
        elif isinstance(node, ast.Lambda):
            ranges.append((node.body.lineno, node.body.end_lineno or node.body.lineno))
    return ranges


def names_bound_at(tree: ast.Module, first: int, last: int) -> tuple[set[str], tuple[int, int] | None]:
    """What an import-time site in lines first..last binds: the names its module-level or class-level
    assignment assigns (a class attribute, a dataclass field's default), the name of the class or
    function whose decorator it is in; or, inside a function's default argument, that function's body
    (the lines that run whenever a call uses the default). ({}, None) for anything else."""

    def spans(node: ast.AST) -> bool:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # decorators come first
        return start <= first and last <= (node.end_lineno or node.lineno)

    body: list[ast.stmt] = list(tree.body)
    while True:
        statement = next((node for node in body if spans(node)), None)
        if statement is None:
            return set(), None
        if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(spans(decorator) for decorator in statement.decorator_list):
                return {statement.name}, None
            if isinstance(statement, ast.ClassDef):
                body = statement.body
                continue
            if statement.body[0].lineno > last:  # the signature: a default argument
                return set(), (statement.body[0].lineno, statement.body[-1].end_lineno or statement.body[-1].lineno)
            return set(), None
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            targets = [statement.target]
        names = {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}
        names |= {node.attr for target in targets for node in ast.walk(target) if isinstance(node, ast.Attribute)}
        return names, None


def references(tree: ast.Module, names: set[str]) -> list[int]:
    """The lines that read one of these names (a Name, or an attribute of that name: `self.FIELDS`)."""
    lines = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load)) or (
            isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.ctx, ast.Load)
        ):
            lines.add(node.lineno)
    return sorted(lines)


def mutants_of(module: str, root: Path = ROOT) -> list[Mutant]:
    text = (root / module).read_text()
    tree = ast.parse(text)
    finder = Sites()
    finder.visit(copy.deepcopy(tree))
    bodies = function_bodies(tree)
    lines = text.splitlines()
    return [
        Mutant(
            module,
            index,
            line,
            change,
            lines[line - 1].strip() if 0 < line <= len(lines) else "",
            end_line=end,
            in_body=any(first <= line and end <= last for first, last in bodies),
        )
        for index, (line, end, change) in enumerate(finder.found)
    ]


def mutated_source(module: str, index: int, root: Path = ROOT) -> str:
    """The module with mutant `index` applied, from the copy the run works in (never the live tree,
    which may change while a run goes on)."""
    tree = ast.parse((root / module).read_text())
    mutated = Sites(apply=index).visit(copy.deepcopy(tree))
    return ast.unparse(ast.fix_missing_locations(mutated))


def copy_of_repository() -> Path:
    target = Path(tempfile.mkdtemp(prefix="harbor-cache-mutants-"))
    ignore = shutil.ignore_patterns("venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "mutants")
    shutil.copytree(ROOT, target / "repo", ignore=ignore)
    return target / "repo"


def fingerprint(root: Path, paths: list[str]) -> str:
    """What a recorded coverage map or an outcome depends on: the text of these files."""
    digest = hashlib.sha256()
    for path in paths:
        for file in sorted((root / path).glob("*.py")) if (root / path).is_dir() else [root / path]:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def test_sources(root: Path, test_file: str) -> list[str]:
    """What a test file's recorded coverage depends on besides the modules under test: the file, every
    `tests.` module it imports (at any depth, followed through those modules' own imports) and each
    conftest.py above it. A change elsewhere under tests/ leaves its map as it is."""
    seen: set[str] = set()
    pending = [test_file]
    while pending:
        current = pending.pop()
        if current in seen or not (root / current).is_file():
            continue
        seen.add(current)
        for node in ast.walk(ast.parse((root / current).read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                if name == "tests" or name.startswith("tests."):
                    base = name.replace(".", "/")
                    pending += [f"{base}.py", f"{base}/__init__.py"]
    directory = Path(test_file).parent
    conftests = {
        str(folder / "conftest.py") for folder in [directory, *directory.parents] if (root / folder / "conftest.py").is_file()
    }
    return sorted(seen | conftests)


def pytest_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        # tests/paths.py finds the shared references beside the clone; the copy is elsewhere.
        "HARBOR_CACHE_SHARED_DIR": str(ROOT.parent / "shared"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(extra or {}),
    }


def collect(copy_root: Path, arguments: list[str]) -> list[str]:
    """The test ids pytest selects with these arguments, in its order."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=copy_root,
        env=pytest_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if "::" in line]


def record_coverage(copy_root: Path, modules: list[str], test_files: list[str]) -> dict:
    """Runs these provider tests once, unmutated, with the line tracer (scripts/mutation_trace): which test
    executes which line of each module, and how long each test takes. Also the baseline: it must pass."""
    trace = Path(tempfile.mkdtemp(prefix="harbor-cache-trace-"))
    env = pytest_env(
        {
            "HARBOR_CACHE_MUTATION_TRACE": str(trace),
            "HARBOR_CACHE_MUTATION_TARGETS": os.pathsep.join(str(copy_root / module) for module in modules),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(copy_root / "scripts" / "mutation_trace"), os.environ.get("PYTHONPATH")])
            ),
        }
    )
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutation_trace_plugin", *test_files]
    done = subprocess.run(command, cwd=copy_root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the provider tests fail without any mutant:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    by_path = {str(copy_root / module): module for module in modules}
    lines: dict[str, dict[int, set[str]]] = {module: {} for module in modules}
    for file in trace.glob("lines.*"):
        for row in file.read_text().splitlines():
            test, path, line = row.split("\t")
            lines[by_path[path]].setdefault(int(line), set()).add(test)
    seconds: dict[str, float] = {}
    for row in (trace / "durations").read_text().splitlines():
        test, _, duration, _ = row.split("\t")
        seconds[test] = seconds.get(test, 0.0) + float(duration)
    shutil.rmtree(trace, ignore_errors=True)
    print(f"coverage recorded in {time.monotonic() - started:.0f}s over {len(seconds)} tests", flush=True)
    return {
        "seconds": seconds,
        "lines": {module: {str(line): sorted(tests) for line, tests in by_line.items()} for module, by_line in lines.items()},
    }


def failed_test(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ", 1)[0].strip()
    return ""


def run_tests(copy_root: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    try:
        done = subprocess.run(command, cwd=copy_root, env=pytest_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.monotonic() - started, ""
    if done.returncode == 0:
        outcome = "survived"
    elif done.returncode == 1:
        outcome = "killed"
    else:
        outcome = f"error ({done.returncode}): {(done.stdout + done.stderr).strip()[-300:]}"
    return outcome, time.monotonic() - started, failed_test(done.stdout)


class Planner:
    """Which tests run against a mutant, in which order.

    Narrowed: only the tests that execute one of the mutant's lines (a test that never reaches the
    changed code runs exactly as without it, so it cannot fail). A site outside any function body runs
    at import; where it binds a name (a module constant, a class attribute such as FIELDS, a dataclass
    field's default, a decorated class) it gets the tests that execute a line reading that name (a Name
    or an attribute `.name`, in any of the modules; a name read at import by another binding, such as
    SETTINGS from FIELDS, is followed) and that execute some function of the mutated module; in a
    function's default argument, the tests that execute that function. Any other import-time site, or
    one whose narrowed selection would be empty or no smaller than the module's, gets the module's
    whole selection. Ordered by how many mutants each test has killed so far, then fastest first, with
    `-x`: a kill usually costs one short test. A mutant that survives its narrowed selection is run
    again with the module's whole selection (plus the narrowed tests) before it counts as a survivor,
    so narrowing can never turn a kill into a survivor: the coverage map only saves time. A
    function-body site no test executes is a survivor without running."""

    def __init__(self, coverage: dict, selections: dict[str, list[str]], order: list[str], root: Path = ROOT) -> None:
        self.coverage = coverage
        self.selections = selections
        self.position = {test: number for number, test in enumerate(order)}
        self.kills: dict[str, int] = {}
        self.lock = threading.Lock()
        self.trees = {module: ast.parse((root / module).read_text()) for module in coverage["lines"]}
        self.bodies = {module: function_bodies(tree) for module, tree in self.trees.items()}
        self.cached: dict[tuple[str, int], list[str] | None] = {}

    def tests_of(self, module: str, lines: Any) -> set[str]:
        by_line = self.coverage["lines"][module]
        return {test for line in lines for test in by_line.get(str(line), [])} - {""}

    def in_body(self, module: str, line: int) -> bool:
        return any(first <= line <= last for first, last in self.bodies[module])

    def covering(self, mutant: Mutant) -> list[str] | None:
        """The tests that execute the mutant's lines (or, at import, read what it binds); None where
        the narrowing does not apply."""
        if not mutant.in_body:
            key = (mutant.module, mutant.index)
            if key not in self.cached:
                self.cached[key] = self.referencing(mutant)
            return self.cached[key]
        lines = self.coverage["lines"][mutant.module]
        tests = {test for line in range(mutant.line, mutant.end_line + 1) for test in lines.get(str(line), [])}
        if "" in tests:  # executed outside any test (at collection): no test can be told apart
            return None
        return sorted(tests)

    def referencing(self, mutant: Mutant) -> list[str] | None:
        """For an import-time site: the tests that read what it binds (see the class docstring)."""
        names, function = names_bound_at(self.trees[mutant.module], mutant.line, mutant.end_line)
        if function is not None:
            tests = self.tests_of(mutant.module, range(function[0], function[1] + 1))
        else:
            tests, seen, pending = set(), set(), set(names)
            while pending:
                seen |= pending
                found: set[str] = set()
                for module, tree in self.trees.items():
                    for line in references(tree, pending):
                        if self.in_body(module, line):
                            tests |= self.tests_of(module, [line])
                        else:  # read at import by another binding: follow what that one binds
                            found |= names_bound_at(tree, line, line)[0]
                pending = found - seen
            body_lines = {line for first, last in self.bodies[mutant.module] for line in range(first, last + 1)}
            tests &= self.tests_of(mutant.module, body_lines)
        whole = self.selections.get(mutant.module)
        if not tests or (whole is not None and len(tests) >= len(whole)):
            return None
        return sorted(tests)

    def ordered(self, tests: set[str] | list[str]) -> list[str]:
        seconds = self.coverage["seconds"]
        with self.lock:
            # A test the map has not timed is one added since (for a survivor): early.
            # Kills per second: a test that often kills goes early unless it is slow.
            return sorted(
                tests,
                key=lambda test: (-(self.kills.get(test, 0) + 1) / (seconds.get(test, 0.0) + 1), self.position.get(test, 0)),
            )

    def in_file_order(self, tests: set[str]) -> list[str]:
        return sorted(tests, key=lambda test: self.position.get(test, len(self.position)))

    def killed(self, test: str) -> None:
        if test:
            with self.lock:
                self.kills[test] = self.kills.get(test, 0) + 1

    def timeout(self, tests: list[str], floor: float) -> float:
        expected = sum(self.coverage["seconds"].get(test, 10.0) for test in tests)
        # The map's seconds were taken under the tracer (several times slower): a generous bound.
        return max(floor, expected + 30)


NARROW_SURVIVOR = "survived its covering tests"


def run_mutant(copy_root: Path, mutant: Mutant, planner: Planner, options: argparse.Namespace, whole: bool) -> None:
    """Phase 1 (`whole` false): the covering tests only; a survivor there is left for phase 2 as
    NARROW_SURVIVOR. Phase 2: the module's whole selection (plus the covering tests)."""
    target = copy_root / mutant.module
    original = target.read_text()
    try:
        source = mutated_source(mutant.module, mutant.index, copy_root)
        compile(source, mutant.module, "exec")
    except (SyntaxError, ValueError) as error:
        mutant.outcome = f"invalid ({error})"
        return
    if options.tests:
        target.write_text(source)
        try:
            mutant.selection = "re-run with " + ", ".join(test.rpartition("::")[2] for test in options.tests)
            mutant.outcome, mutant.seconds, mutant.killed_by = run_tests(copy_root, options.tests, options.timeout)
            mutant.seconds = round(mutant.seconds, 1)
        finally:
            target.write_text(original)
        return
    covering = planner.covering(mutant)
    if not whole and covering == []:
        mutant.outcome, mutant.selection = "survived", "none executes it"
        return
    target.write_text(source)
    try:
        if whole or covering is None:
            tests = planner.ordered(set(planner.selections[mutant.module]) | set(covering or []))
            selection = f"module: {len(tests)} tests"
            mutant.selection = f"{mutant.selection}, then {selection}" if mutant.outcome == NARROW_SURVIVOR else selection
        else:
            tests = planner.ordered(covering)
            mutant.selection = f"{'covering' if mutant.in_body else 'reading what it binds'}: {len(tests)} tests"
        outcome, seconds, mutant.killed_by = run_tests(copy_root, tests, planner.timeout(tests, options.timeout))
        mutant.seconds = round(mutant.seconds + seconds, 1) if whole and mutant.outcome == NARROW_SURVIVOR else round(seconds, 1)
        mutant.outcome = NARROW_SURVIVOR if outcome == "survived" and not whole and covering is not None else outcome
        if mutant.outcome.startswith("killed"):
            planner.killed(mutant.killed_by)
    finally:
        target.write_text(original)


def progress_key(mutant: Mutant, module_hash: str) -> str:
    return f"{mutant.module}:{mutant.index}:{module_hash}"


def outcome_rank(outcome: str) -> int:
    """How far a mutant got: a kill is final, a survivor of the whole selection is next, a survivor of
    its narrowed tests (phase 2 still to run) last."""
    if outcome.startswith("killed"):
        return 3
    return 2 if outcome == "survived" else 1 if outcome == NARROW_SURVIVOR else 0


def read_progress(path: Path) -> dict[str, dict]:
    """The outcome of each mutant (by its key: module, index and the module's text) in a progress file.
    The last outcome counts, but a kill stays one: tests are only ever added, and a run in a copy made
    before a test was added may still finish after that test killed it."""
    done: dict[str, dict] = {}
    if path.exists():
        for row in path.read_text().splitlines():
            entry = json.loads(row)
            earlier = done.get(entry["key"])
            if not (earlier and earlier["outcome"].startswith("killed") and not entry["outcome"].startswith("killed")):
                done[entry["key"]] = entry
    return done


def merge_progress(progress: Path, other: Path) -> tuple[int, int]:
    """Appends to `progress` each outcome of `other` that goes further than what `progress` holds for
    that mutant (a kill over a survivor, a whole-selection survivor over a narrowed one): the merged
    file reads back with every kill of both and nothing less final than either. Outcomes of a module
    whose text differs have other keys and are simply carried along."""
    ours, theirs = read_progress(progress), read_progress(other)
    taken = [
        entry
        for key, entry in theirs.items()
        if key not in ours or outcome_rank(entry["outcome"]) > outcome_rank(ours[key]["outcome"])
    ]
    progress.parent.mkdir(parents=True, exist_ok=True)
    with progress.open("a") as file:
        for entry in taken:
            file.write(json.dumps(entry) + "\n")
    return len(taken), len(theirs) - len(taken)


def write_result(options: argparse.Namespace, chosen: list[Mutant], totals: dict[str, int], how: dict) -> dict:
    """The result so far (written after every mutant, so a run stopped early still leaves one)."""
    ran = [m for m in chosen if m.outcome.startswith("killed") or m.outcome == "survived"]
    killed = [m for m in ran if m.outcome.startswith("killed")]
    for mutant in chosen:
        if mutant.outcome in ("survived", NARROW_SURVIVOR):
            mutant.explanation = EQUIVALENT.get((mutant.module, mutant.change, mutant.source), "")
    equivalent = [m for m in ran if m.outcome == "survived" and m.explanation]
    open_survivors = [m for m in ran if m.outcome == "survived" and not m.explanation]
    result = {
        "commit": options.commit,
        "command": "venv/bin/python scripts/mutation_providers.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
        "selection": how,
        "sample_per_module": options.sample,
        "seed": options.seed,
        "mutants_per_module": totals,
        "total": sum(totals.values()),
        "ran": len(ran),
        "killed": len(killed),
        "equivalent": len(equivalent),
        "survived_unexplained": len(open_survivors),
        "not_run": len(chosen) - len(ran),
        # Not counted as run: they passed their covering tests, the module's whole selection has not run yet.
        "of_which_survived_covering_tests_awaiting_whole_selection": sum(1 for m in chosen if m.outcome == NARROW_SURVIVOR),
        # killed / ran, the equivalent ones counted as survivors; and killed / (ran - equivalent).
        "kill_rate": round(len(killed) / len(ran), 3) if ran else None,
        # killed / every mutant, those not run counted as survivors: a floor for the whole figure.
        "kill_rate_of_all_mutants": round(len(killed) / len(chosen), 3) if chosen else None,
        "kill_rate_without_equivalent": round(len(killed) / (len(ran) - len(equivalent)), 3)
        if len(ran) > len(equivalent)
        else None,
        "seconds": round(sum(m.seconds for m in chosen), 1),
        "by_module": {
            module: {
                "ran": sum(1 for m in ran if m.module == module),
                "killed": sum(1 for m in killed if m.module == module),
                "equivalent": sum(1 for m in equivalent if m.module == module),
            }
            for module in options.modules
        },
        "mutants": [asdict(m) for m in chosen],
    }
    options.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="*", default=list(MODULES))
    parser.add_argument("--sample", type=int, default=0, help="mutants per module (0: all)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0, help="least seconds per test run (more for long selections)")
    parser.add_argument("--budget", type=float, default=0.0, help="stop starting mutants after this many seconds")
    parser.add_argument("--workers", type=int, default=2, help="mutants run at once, each in its own copy")
    parser.add_argument("--whole", action="store_true", help="no narrowing: every mutant runs the module's whole selection")
    parser.add_argument("--only", nargs="*", default=[], help="mutants by module:index (e.g. to re-run survivors)")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="mutants by module:index left out of this run (e.g. awaiting a test someone is writing); use --out elsewhere",
    )
    parser.add_argument("--rerun-survivors", action="store_true", help="run again the survivors in the progress file")
    parser.add_argument("--record", action="store_true", help="record the coverage map again (tests added since)")
    parser.add_argument("--coverage-only", action="store_true", help="bring the coverage map up to date, run no mutant")
    parser.add_argument(
        "--tests",
        nargs="*",
        default=[],
        help="with --only: run these tests against each mutant; a kill is recorded (confirms a test added for a survivor)",
    )
    parser.add_argument("--report", action="store_true", help="write the result from the progress file, run nothing")
    parser.add_argument(
        "--merge-progress",
        type=Path,
        nargs="*",
        default=[],
        metavar="FILE",
        help="fold other runs' progress files (another worktree's mutants/progress.jsonl) into --progress, run nothing",
    )
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument(
        "--progress",
        type=Path,
        default=ROOT / "mutants" / "progress.jsonl",
        help="each outcome is appended here as it finishes; a stopped run resumes from it",
    )
    options = parser.parse_args()
    options.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if options.merge_progress:
        for other in options.merge_progress:
            added, kept = merge_progress(options.progress, other)
            print(f"{other}: {added} outcomes taken, {kept} already known as well or better")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    # The run works in copies made now: mutants are taken from them, so edits meanwhile change nothing.
    source_root = ROOT if options.list else copy_of_repository()
    copies = [source_root]
    per_module: list[list[Mutant]] = []
    totals: dict[str, int] = {}
    module_hash = {module: fingerprint(source_root, [module]) for module in options.modules}
    for module in options.modules:
        every = mutants_of(module, source_root)
        totals[module] = len(every)
        wanted = {int(item.rpartition(":")[2]) for item in options.only if item.rpartition(":")[0] == module}
        if options.only:
            every = [m for m in every if m.index in wanted]
        elif options.sample and len(every) > options.sample:
            every = sorted(random.Random(f"{options.seed}:{module}").sample(every, options.sample), key=lambda m: m.index)
        left_out = {int(item.rpartition(":")[2]) for item in options.exclude if item.rpartition(":")[0] == module}
        every = [m for m in every if m.index not in left_out]
        per_module.append(every)
    # Round robin over the modules, so a budget that runs out leaves each module about as covered.
    chosen = [m for group in itertools.zip_longest(*per_module) for m in group if m is not None]
    if options.list:
        for mutant in chosen:
            where = "body" if mutant.in_body else "import"
            print(f"{mutant.module}:{mutant.line} [{mutant.index}] ({where}) {mutant.change}: {mutant.source}")
        return 0

    options.progress.parent.mkdir(parents=True, exist_ok=True)
    done = read_progress(options.progress)
    lock = threading.Lock()
    try:
        # The map is kept per version of the modules, and within it per test file: a test file that is
        # new or changed (or one of the tests. modules it imports, or a conftest above it: test_sources)
        # is recorded again, alone.
        tests = [test for test in TESTS if (source_root / test).exists()]
        cache = options.progress.parent / f"coverage-{fingerprint(source_root, list(MODULES))}.json"
        coverage = json.loads(cache.read_text()) if cache.exists() and not options.record else {}
        coverage.setdefault("seconds", {})
        coverage.setdefault("lines", {module: {} for module in MODULES})
        recorded = coverage.setdefault("files", {})
        stale = [test for test in tests if recorded.get(test) != fingerprint(source_root, test_sources(source_root, test))]
        # --rerun-survivors runs phase 2 only (the whole selection): an older map just orders the tests.
        if stale and not (options.rerun_survivors or options.report or options.tests):
            fresh = record_coverage(source_root, list(MODULES), stale)
            gone = {test for test in coverage["seconds"] if test.split("::")[0] in stale}
            for module, by_line in coverage["lines"].items():
                for line, ran in list(by_line.items()):
                    by_line[line] = sorted((set(ran) - gone) | set(fresh["lines"][module].get(line, [])))
                for line, ran in fresh["lines"][module].items():
                    by_line.setdefault(line, ran)
            coverage["seconds"] = {
                **{test: s for test, s in coverage["seconds"].items() if test not in gone},
                **fresh["seconds"],
            }
            recorded.update({test: fingerprint(source_root, test_sources(source_root, test)) for test in stale})
            cache.write_text(json.dumps(coverage))
        if options.coverage_only:
            return 0
        order = collect(source_root, tests)
        # Tests for survivors (EDGES) belong to every module's selection.
        edges = collect(source_root, [EDGES]) if (source_root / EDGES).exists() else []
        selections = {module: collect(source_root, MODULES[module]) + edges for module in options.modules}
        planner = Planner(coverage, selections, order, source_root)
        how = {
            "tests": TESTS,
            "coverage": "each test's executed lines of the modules, recorded once by scripts/mutation_trace "
            "(a line tracer loaded into every Python process, the provider hosts included)",
            "narrowed": " ".join((Planner.__doc__ or "").split()),
            "module_selections": {module: MODULES[module] for module in options.modules},
            "workers": options.workers,
            "history": "outcomes accumulate in mutants/progress.jsonl over runs (resumed after each restart); a "
            "survivor for which a test was added is re-run with that test (--only ... --tests ...; its selection "
            "says 're-run with ...'), and a recorded kill stays one. The modules did not change during the runs "
            "(each outcome is keyed by the module's text); `commit` is the tree the result was written from.",
        }
        # Phase 1 (narrowed) first for every mutant, then phase 2 (whole selection) for the survivors of
        # phase 1 and the sites that run at import: the first figures come early.
        first: list[Mutant] = []
        second: list[Mutant] = []
        for mutant in chosen:
            entry = done.get(progress_key(mutant, module_hash[mutant.module]))
            if entry and not options.only:
                for field in ("outcome", "seconds", "selection", "killed_by"):
                    setattr(mutant, field, entry[field])
                if entry["outcome"].startswith("killed"):
                    planner.killed(entry["killed_by"])
                if mutant.outcome == NARROW_SURVIVOR or (options.rerun_survivors and mutant.outcome == "survived"):
                    second.append(mutant)
            elif options.report:
                mutant.outcome = mutant.outcome or "not run"
            elif not options.rerun_survivors:
                (first if planner.covering(mutant) is not None and not options.whole else second).append(mutant)
        if options.report:
            first, second = [], []
        print(
            f"{len(chosen)} mutants: {len(first)} to run narrowed, {len(second)} with the whole selection",
            flush=True,
        )
        copies += [copy_of_repository() for _ in range(max(1, options.workers) - 1)]
        second.sort(key=lambda m: (m.module, m.change, m.source) not in EQUIVALENT)  # equivalent ones last
        queue = [(mutant, True) for mutant in second] + [(mutant, False) for mutant in reversed(first)]
        pending_first = [len(first)]  # phase-1 mutants still queued (the end of the queue)
        started = time.monotonic()
        finished = [0]

        def work(copy_root: Path) -> None:
            while True:
                with lock:
                    if not queue or (options.budget and time.monotonic() - started > options.budget):
                        return
                    mutant, whole = queue.pop()
                    if not whole:
                        pending_first[0] -= 1
                run_mutant(copy_root, mutant, planner, options, whole)
                with lock:
                    finished[0] += 1
                    if mutant.outcome == NARROW_SURVIVOR:
                        # Phase 2, after every phase-1 mutant; those explained as equivalent last.
                        explained = (mutant.module, mutant.change, mutant.source) in EQUIVALENT
                        queue.insert(0 if explained else len(queue) - pending_first[0], (mutant, True))
                    if mutant.outcome.startswith(("killed", "survived")) and not (
                        options.tests and not mutant.outcome.startswith("killed")
                    ):
                        entry = {"key": progress_key(mutant, module_hash[mutant.module]), **asdict(mutant)}
                        with options.progress.open("a") as file:
                            file.write(json.dumps(entry) + "\n")
                    where = f"{mutant.module}:{mutant.line}"
                    print(
                        f"[{finished[0]}, {len(queue)} queued] {mutant.outcome[:40]:>27} {mutant.seconds:6.1f}s {where} "
                        f"[{mutant.index}] {mutant.change[:50]} ({mutant.selection})",
                        flush=True,
                    )
                    write_result(options, chosen, totals, how)

        workers = [threading.Thread(target=work, args=(copy_root,)) for copy_root in copies]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        for copy_root in copies:
            if copy_root != ROOT:
                shutil.rmtree(copy_root.parent, ignore_errors=True)

    for mutant in chosen:
        if not mutant.outcome:
            mutant.outcome = "not run"
    result = write_result(options, chosen, totals, how)
    print(
        f"kill rate {result['kill_rate']} ({result['killed']} killed, {result['equivalent']} equivalent, "
        f"{result['survived_unexplained']} open, of {result['ran']} run; {result['not_run']} not run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
