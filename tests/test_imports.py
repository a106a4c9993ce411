"""The import graph among the project's modules, read from the source: it has no cycle, counting
the imports inside functions too (a lazy import only hides a cycle until it runs)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_modules(root=ROOT):
    """{module name: path} of the flat modules in the project's root."""
    return {p.stem: p for p in sorted(root.glob('*.py'))}


def imported_names(source):
    """The top-level module names that `source` imports anywhere (at module level or in a function)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split('.')[0])
    return names


def import_graph(root=ROOT):
    """{module: sorted project modules it imports}."""
    modules = project_modules(root)
    return {name: sorted(imported_names(path.read_text(encoding='utf-8')) & set(modules) - {name})
            for name, path in modules.items()}


def find_cycle(graph):
    """A list of modules [a, b, ..., a] that import each other in a ring, or None."""
    state, stack = {}, []  # state: 1 on the current path, 2 finished

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_project_import_graph_has_no_cycle():
    graph = import_graph()
    assert {'model_pytorch', 'hf_interop', 'tf_checkpoint', 'weights'} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_model_reaches_no_checkpoint_format_but_the_tf_release():
    graph = import_graph()
    assert set(graph['model_pytorch']) <= {'errors', 'flags', 'loss', 'tf_checkpoint'}, graph['model_pytorch']
    assert 'model_pytorch' not in graph['tf_checkpoint']


def test_lazy_imports_count_and_a_cycle_is_found(tmp_path):
    (tmp_path / 'a.py').write_text("import b\n")
    (tmp_path / 'b.py').write_text("def f():\n    from c import g\n")
    (tmp_path / 'c.py').write_text("import os\n\ndef g():\n    import a\n")
    graph = import_graph(tmp_path)
    assert graph == {'a': ['b'], 'b': ['c'], 'c': ['a']}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    (tmp_path / 'c.py').write_text("import os\n")
    assert find_cycle(import_graph(tmp_path)) is None
