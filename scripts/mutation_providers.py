"""Mutation testing of the Harbor providers and their API client against the provider tests (issue 20).

Not part of CI: it runs the provider tests (real provider host, Harbor emulator) once per mutant, which
takes hours for every mutant on a small machine. Each mutant is one small change to one module
(an operator swapped, a boolean flipped, a number moved by one, a call dropped, a return emptied);
the tests that concern that module run against it in a copy of the repository, and the mutant is
*killed* when they fail (or time out), *survived* when they pass. The kill rate says how much of
the providers' behaviour the tests pin down; every survivor is either a missing test or an
equivalent mutant (a change no behaviour can tell), explained in the result.

    venv/bin/python scripts/mutation_providers.py                      # every mutant
    venv/bin/python scripts/mutation_providers.py --sample 15 --seed 1 # 15 per module, reproducible
    venv/bin/python scripts/mutation_providers.py --list               # the mutants, without running

The last result is committed as tests/data/mutation_providers.json (with the commit it ran on).
A small AST mutator of our own rather than mutmut: mutmut runs tests in its own copy with
trampolines that the separate provider-host process (`python -m pulumi.dynamic`, which imports the
providers by module path) would not see.
"""

from __future__ import annotations

import argparse
import ast
import copy
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "tests" / "data" / "mutation_providers.json"
DRIFT = "tests/harbor/test_provider_drift.py"
HOST = "tests/harbor/test_provider_host.py"
# Each module with the tests that concern it (pytest arguments).
MODULES: dict[str, list[str]] = {
    "components/harbor/registry.py": [DRIFT, HOST, "-k", "registry or url or upstream or docker_hub or adopt"],
    "components/harbor/project.py": [DRIFT, HOST, "-k", "project or retention or settings_missing or limits or metadata"],
    "components/harbor/oidc.py": [DRIFT, HOST, "-k", "oidc"],
    "components/harbor/gc_schedule.py": [DRIFT, HOST, "-k", "gc"],
    "components/harbor/robot.py": [DRIFT, "tests/harbor/test_robot_provider.py", "-k", "robot or secret or create or check"],
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
# provider host: mutants inside them are out of this script's scope.
SKIPPED_CLASS_BASES = ("Resource",)

# Survivors that no behaviour can tell from the original, by (module, change, source line): why.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (
        "components/harbor/provider_base.py",
        "True -> False",
        "@dataclass(frozen=True)",
    ): "no code assigns to a Field or HarborConnection: frozen or not, the same behaviour",
    (
        "components/harbor/robot.py",
        "drop the call `time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))`",
        "time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))",
    ): "only how often the name is looked up while settling; the same answers",
    (
        "components/harbor/provider_base.py",
        "drop the call `time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))`",
        "time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))",
    ): "only how often the name is looked up while settling; the same answers",
    (
        "components/harbor/provider_base.py",
        "return None",
        "return error",
    ): "the base explain() is never reached: the two providers that create through create_or_adopt override it",
}


@dataclass
class Mutant:
    module: str
    index: int
    line: int
    change: str
    source: str
    outcome: str = ""
    seconds: float = 0.0
    explanation: str = ""


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
        self.found: list[tuple[int, str]] = []

    def _site(self, node: ast.AST, change: str) -> bool:
        index = len(self.found)
        self.found.append((getattr(node, "lineno", 0), change))
        return index == self.apply

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:  # noqa: N802
        bases = [ast.unparse(base) for base in node.bases]
        if any(base.endswith(SKIPPED_CLASS_BASES) for base in bases):
            return node
        return self.generic_visit(node)

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


def mutants_of(module: str, root: Path = ROOT) -> list[Mutant]:
    text = (root / module).read_text()
    finder = Sites()
    finder.visit(ast.parse(text))
    lines = text.splitlines()
    return [
        Mutant(module, index, line, change, lines[line - 1].strip() if 0 < line <= len(lines) else "")
        for index, (line, change) in enumerate(finder.found)
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


def run_tests(copy_root: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    env = {
        **os.environ,
        # tests/paths.py finds the shared references beside the clone; the copy is elsewhere.
        "HARBOR_CACHE_SHARED_DIR": str(ROOT.parent / "shared"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=copy_root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.monotonic() - started
    outcome = "survived" if done.returncode == 0 else "killed" if done.returncode == 1 else f"error ({done.returncode})"
    return outcome, time.monotonic() - started


def write_result(options: argparse.Namespace, chosen: list[Mutant], totals: dict[str, int]) -> dict:
    """The result so far (written after every mutant, so a run stopped early still leaves one)."""
    ran = [m for m in chosen if m.outcome.startswith(("killed", "survived"))]
    killed = [m for m in ran if m.outcome.startswith("killed")]
    for mutant in ran:
        if mutant.outcome == "survived":
            mutant.explanation = EQUIVALENT.get((mutant.module, mutant.change, mutant.source), "")
    equivalent = [m for m in ran if m.explanation]
    result = {
        "commit": options.commit,
        "sample_per_module": options.sample,
        "seed": options.seed,
        "mutants_per_module": totals,
        "ran": len(ran),
        "killed": len(killed),
        "kill_rate": round(len(killed) / len(ran), 3) if ran else None,
        "equivalent": len(equivalent),
        "kill_rate_without_equivalent": round(len(killed) / (len(ran) - len(equivalent)), 3)
        if len(ran) > len(equivalent)
        else None,
        "by_module": {
            module: {
                "ran": sum(1 for m in ran if m.module == module),
                "killed": sum(1 for m in killed if m.module == module),
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
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant's test run")
    parser.add_argument("--budget", type=float, default=0.0, help="stop starting mutants after this many seconds")
    parser.add_argument("--only", nargs="*", default=[], help="mutants by module:index (e.g. to re-run survivors)")
    parser.add_argument(
        "--rerun-survivors",
        type=Path,
        help="a previous result: run again its survivors (found by module, change and source line) against today's tests",
    )
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULT)
    options = parser.parse_args()
    options.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    # A stopped run (SIGTERM) still restores nothing it need not: it works in a copy, which is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    # The run works in a copy made now: mutants are taken from it, so edits meanwhile change nothing.
    source_root = ROOT if options.list else copy_of_repository()
    per_module: list[list[Mutant]] = []
    totals: dict[str, int] = {}
    for module in options.modules:
        every = mutants_of(module, source_root)
        totals[module] = len(every)
        wanted = {int(item.rpartition(":")[2]) for item in options.only if item.rpartition(":")[0] == module}
        if options.rerun_survivors:
            previous = json.loads(options.rerun_survivors.read_text())["mutants"]
            keys = {(m["change"], m["source"]) for m in previous if m["module"] == module and m["outcome"] == "survived"}
            every = [m for m in every if (m.change, m.source) in keys]
        elif options.only:
            every = [m for m in every if m.index in wanted]
        elif options.sample and len(every) > options.sample:
            every = sorted(random.Random(f"{options.seed}:{module}").sample(every, options.sample), key=lambda m: m.index)
        per_module.append(every)
    # Round robin over the modules, so a budget that runs out leaves each module about as covered.
    chosen = [m for group in itertools.zip_longest(*per_module) for m in group if m is not None]
    if options.list:
        for mutant in chosen:
            print(f"{mutant.module}:{mutant.line} [{mutant.index}] {mutant.change}: {mutant.source}")
        return 0

    copy_root = source_root
    started = time.monotonic()
    try:
        for number, mutant in enumerate(chosen, 1):
            if options.budget and time.monotonic() - started > options.budget:
                mutant.outcome = "not run (budget)"
                continue
            target = copy_root / mutant.module
            original = target.read_text()
            try:
                source = mutated_source(mutant.module, mutant.index, copy_root)
                compile(source, mutant.module, "exec")
            except (SyntaxError, ValueError) as error:
                mutant.outcome = f"invalid ({error})"
                continue
            target.write_text(source)
            try:
                mutant.outcome, mutant.seconds = run_tests(copy_root, MODULES[mutant.module], options.timeout)
            finally:
                target.write_text(original)
            where = f"{mutant.module}:{mutant.line}"
            print(f"[{number}/{len(chosen)}] {mutant.outcome:>16} {mutant.seconds:6.1f}s {where} {mutant.change}")
            write_result(options, chosen, totals)
            sys.stdout.flush()
    finally:
        shutil.rmtree(copy_root.parent, ignore_errors=True)

    result = write_result(options, chosen, totals)
    not_run = len(chosen) - result["ran"]
    print(f"kill rate {result['kill_rate']} ({result['killed']} of {result['ran']} mutants run; {not_run} not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
