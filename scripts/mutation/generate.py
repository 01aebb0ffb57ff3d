"""Mutants of a module's source: small, plausible mistakes (a flipped comparison, a dropped call, a
wrong constant) made one at a time, each as the module's full text with one span replaced.

Mutations are spliced into the original text by the AST node's position, so comments and layout
stay as they were and each mutant differs from the original in exactly one place. What is not
mutated, and why:
  - strings (messages, event names, docstrings): a changed word is not a broken promise;
  - the arguments of log calls (a field's value): the event itself is covered by deleting the call,
    except for `log.debug` calls, which the default level does not show;
  - `# pragma: no mutate` lines, type annotations, decorators (`dataclass(frozen=True)`: nothing
    relies on the error a frozen class raises), and `if TYPE_CHECKING:` blocks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "msg"}

_COMPARE_SWAPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the repo root
    line: int  # 1-based, where the mutated span starts
    end_line: int
    stmt_line: int  # first line of the statement holding it: coverage records statements by that line
    col: int  # where the span starts on its line (two mutants of one kind may share a line)
    end_col: int  # where it ends (nested `a + b + c` spans start at the same place)
    kind: str  # what was done, e.g. "== -> !="
    before: str  # the span's original text
    after: str  # what replaced it
    source: str  # the whole mutated module

    @property
    def ident(self) -> str:
        return f"{self.path}:{self.line}:{self.col}-{self.end_col}:{self.kind}"


class _Spans:
    """Offsets into the source for (line, col) positions, columns being UTF-8 byte offsets."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col_bytes: int) -> int:
        raw = self.lines[line - 1].encode()[:col_bytes].decode()
        return self.starts[line - 1] + len(raw)

    def of(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(
            node.end_lineno, node.end_col_offset
        )


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOG_METHODS
    )


def _is_debug_log(node: ast.AST) -> bool:
    """`log.debug(...)`: not shown at the default level, so not a promise to anyone."""
    return _is_log_call(node) and node.func.attr == "debug"


def _skipped_regions(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges never mutated: log-call arguments, annotations, TYPE_CHECKING blocks."""
    regions = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            regions.extend((d.lineno, d.end_lineno) for d in node.decorator_list)
        if _is_log_call(node):
            regions.extend(
                (a.lineno, a.end_lineno)
                for a in [*node.args, *(k.value for k in node.keywords)]
            )
        elif isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation is not None:
            regions.append((node.annotation.lineno, node.annotation.end_lineno))
        elif (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.returns is not None
        ):
            regions.append((node.returns.lineno, node.returns.end_lineno))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            regions.append((node.lineno, node.end_lineno))
    return regions


def _inside_fstring(tree: ast.Module) -> set[int]:
    return {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for child in ast.walk(node)
    }


def _docstring_ids(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if (
            isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            )
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first))
    return ids


def _edits(node: ast.AST, spans: _Spans) -> list[tuple[str, ast.AST, str]]:
    """(kind, node whose span is replaced, replacement text) for one node."""
    text = spans.text
    out = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap:
                ops = list(node.ops)
                ops[i] = swap()
                mutated = ast.Compare(
                    left=node.left, ops=ops, comparators=node.comparators
                )
                which = f" (comparison {i + 1})" if len(ops) > 1 else ""
                out.append(
                    (
                        f"{_op(op)} -> {_op(swap())}{which}",
                        node,
                        f"({ast.unparse(mutated)})",
                    )
                )
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(
            (
                f"{_op(node.op)} -> {_op(other)}",
                node,
                f"({ast.unparse(ast.BoolOp(op=other, values=node.values))})",
            )
        )
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start, end = spans.of(node.operand)
        out.append(("not dropped", node, f"({text[start:end]})"))
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
        other = _BINOP_SWAPS[type(node.op)]()
        out.append(
            (
                f"{_op(node.op)} -> {_op(other)}",
                node,
                f"({ast.unparse(ast.BinOp(left=node.left, op=other, right=node.right))})",
            )
        )
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
        other = _BINOP_SWAPS[type(node.op)]()
        out.append(
            (
                f"{_op(node.op)}= -> {_op(other)}=",
                node,
                ast.unparse(
                    ast.AugAssign(target=node.target, op=other, value=node.value)
                ),
            )
        )
    elif (
        isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and not isinstance(node.value, bool)
    ):
        out.append(
            (f"{node.value!r} -> {node.value + 1!r}", node, repr(node.value + 1))
        )
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        out.append((f"{node.value} -> {not node.value}", node, repr(not node.value)))
    elif isinstance(node, (ast.If, ast.While)) and not isinstance(
        node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant)
    ):
        start, end = spans.of(node.test)
        out.append(("condition negated", node.test, f"not ({text[start:end]})"))
    elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
        if not _is_debug_log(node.value):
            out.append(("call dropped", node, "pass"))
    elif (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        out.append(("return None", node, "return None"))
    elif isinstance(node, ast.Break):
        out.append(("break -> continue", node, "continue"))
    elif isinstance(node, ast.Continue):
        out.append(("continue -> break", node, "break"))
    return out


def _op(op: ast.AST) -> str:
    return {
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.In: "in",
        ast.NotIn: "not in",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.And: "and",
        ast.Or: "or",
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.Div: "/",
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.BitOr: "|",
        ast.BitAnd: "&",
    }[type(op)]


def mutants_of(path: str, text: str) -> list[Mutant]:
    """Every mutant of one module, in source order."""
    tree = ast.parse(text)
    spans = _Spans(text)
    skipped = _skipped_regions(tree)
    in_fstring = _inside_fstring(tree)
    docstrings = _docstring_ids(tree)
    statement_of = {}  # node -> first line of its innermost statement (BFS: inner ones overwrite)
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.stmt):
            for child in ast.walk(stmt):
                statement_of[id(child)] = stmt.lineno
    no_mutate = {
        i + 1 for i, line in enumerate(spans.lines) if "pragma: no mutate" in line
    }
    found = []
    for node in ast.walk(tree):
        if (
            not hasattr(node, "lineno")
            or id(node) in in_fstring
            or id(node) in docstrings
        ):
            continue
        for kind, target, replacement in _edits(node, spans):
            first, last = target.lineno, target.end_lineno
            if any(a <= first and last <= b for a, b in skipped) or no_mutate & set(
                range(first, last + 1)
            ):
                continue
            start, end = spans.of(target)
            mutated = text[:start] + replacement + text[end:]
            try:
                compile(mutated, path, "exec")
            except SyntaxError:
                continue
            found.append(
                Mutant(
                    path,
                    first,
                    last,
                    statement_of.get(id(target), first),
                    target.col_offset,
                    target.end_col_offset,
                    kind,
                    text[start:end],
                    replacement,
                    mutated,
                )
            )
    found.sort(key=lambda m: (m.line, m.kind))
    return found
