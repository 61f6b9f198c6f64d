#!/usr/bin/python3
"""Generate the C# P/Invoke layer and the native struct-layout table from the public C header.

Reads native/include/moecutlass/moecutlass.h with libclang (Debian python3-clang-14; run with the system
/usr/bin/python3, which is the interpreter that sees it) and writes two committed files:

  src/MoeCutlass/Interop/NativeMethods.g.cs    [LibraryImport] functions, blittable structs, constants,
                                                and the struct layout clang computed (NativeLayout)
  native/src/core/struct_layout_table.inc       the same struct/field list for the native library, so it
                                                can report sizeof/offsetof as its own compiler laid them out

Layouts are checked at test time three ways (clang's view here, the C# compiler's, and the native
compiler's via mc_get_struct_layout), which catches a header edit that was not regenerated as well as a
mapping bug in this script.

Usage:  generate_bindings.py [--check] [--root DIR]
  --check   regenerate in memory and fail (exit 1) if a committed file differs; nothing is written.
"""
import argparse
import difflib
import os
import sys

HEADER = "native/include/moecutlass/moecutlass.h"
CS_OUT = "src/MoeCutlass/Interop/NativeMethods.g.cs"
INC_OUT = "native/src/core/struct_layout_table.inc"
LIBRARY_NAME = "moecutlass"
LIBCLANG_CANDIDATES = [
    "/usr/lib/llvm-14/lib/libclang.so.1",
    "/usr/lib/x86_64-linux-gnu/libclang-14.so.1",
    "/usr/lib/aarch64-linux-gnu/libclang-14.so.1",
]

# Fixed-width C types and their C# equivalents. Anything else (long, size_t, bool, enums) is refused:
# their size or signedness differs between platforms or compilers.
PRIMITIVES = {
    "int8_t": "sbyte", "uint8_t": "byte", "int16_t": "short", "uint16_t": "ushort",
    "int32_t": "int", "uint32_t": "uint", "int64_t": "long", "uint64_t": "ulong",
    "float": "float", "double": "double", "char": "byte", "void": "void",
}


class GenerationError(Exception):
    pass


def load_clang():
    try:
        import clang.cindex as ci
    except ImportError:
        raise GenerationError(
            "libclang's Python bindings are missing: apt-get install python3-clang-14 libclang1-14 "
            "(and run this script with /usr/bin/python3)")
    for path in LIBCLANG_CANDIDATES:
        if os.path.exists(path):
            ci.Config.set_library_file(path)
            break
    return ci


def parse(ci, header_path):
    index = ci.Index.create()
    tu = index.parse(header_path, args=["-x", "c", "-std=c11"],
                     options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD | ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES)
    errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        raise GenerationError("clang could not parse the header:\n" + "\n".join(str(d) for d in errors))
    return tu


def in_header(cursor, header_path):
    return cursor.location.file is not None and os.path.realpath(cursor.location.file.name) == os.path.realpath(header_path)


class Model:
    def __init__(self):
        self.constants = []   # (name, C# type, value text)
        self.structs = []     # (name, [(field name, C# decl, offset bytes)], size bytes)
        self.handles = []     # typedef names of opaque handle pointers
        self.aliases = {}     # scalar typedef name -> C# type (mc_status -> int)
        self.functions = []   # (name, C# return, [(C# type, name)], comment)


def csharp_type(ci, t, model, context):
    """Map a clang type to its C# interop spelling; refuse anything not fixed-size and unambiguous."""
    kind = t.kind
    if kind == ci.TypeKind.ELABORATED:
        return csharp_type(ci, t.get_named_type(), model, context)
    if kind == ci.TypeKind.TYPEDEF:
        name = t.get_declaration().spelling
        if name in PRIMITIVES:
            return PRIMITIVES[name]
        if name in model.handles:
            return "nint"
        if name in model.aliases:
            return model.aliases[name]
        if name in [s[0] for s in model.structs]:
            return name
        return csharp_type(ci, t.get_canonical(), model, context)
    if kind == ci.TypeKind.POINTER:
        return csharp_type(ci, t.get_pointee(), model, context) + "*"
    if kind == ci.TypeKind.RECORD:
        name = t.get_declaration().spelling
        if name in [s[0] for s in model.structs]:
            return name
        raise GenerationError(f"{context}: struct type '{name}' is not a public struct of the header")
    simple = {
        ci.TypeKind.VOID: "void", ci.TypeKind.FLOAT: "float", ci.TypeKind.DOUBLE: "double",
        ci.TypeKind.CHAR_S: "byte", ci.TypeKind.SCHAR: "sbyte", ci.TypeKind.UCHAR: "byte",
        ci.TypeKind.INT: "int", ci.TypeKind.UINT: "uint", ci.TypeKind.SHORT: "short", ci.TypeKind.USHORT: "ushort",
        ci.TypeKind.LONGLONG: "long", ci.TypeKind.ULONGLONG: "ulong",
    }
    if kind in (ci.TypeKind.LONG, ci.TypeKind.ULONG):
        raise GenerationError(f"{context}: 'long' differs between LP64 and LLP64; use int32_t or int64_t")
    if kind == ci.TypeKind.ENUM:
        raise GenerationError(f"{context}: enums are not allowed in the ABI (their underlying type is compiler-defined)")
    if kind == ci.TypeKind.BOOL:
        raise GenerationError(f"{context}: bool is not allowed in the ABI; use int32_t")
    if kind in simple:
        return simple[kind]
    raise GenerationError(f"{context}: unsupported type '{t.spelling}' (kind {kind})")


def integer_macro_value(cursor):
    tokens = [t.spelling for t in cursor.get_tokens()][1:]
    if not tokens:
        return None
    text = "".join(tokens)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    neg = text.startswith("-")
    digits = text[1:] if neg else text
    if digits.isdigit():
        return int(text)
    return None


def comment_of(cursor):
    raw = cursor.raw_comment
    if not raw:
        return []
    lines = []
    for line in raw.splitlines():
        line = line.strip()
        for prefix in ("/**", "/*", "*/", "*"):
            if line.startswith(prefix):
                line = line[len(prefix):]
        if line.endswith("*/"):
            line = line[:-2]
        line = line.strip()
        if line:
            lines.append(line)
    return lines


def build_model(ci, tu, header_path):
    model = Model()
    cursors = [c for c in tu.cursor.get_children() if in_header(c, header_path)]
    # Macros: integer constants only (MC_API, include guards and the like carry no value).
    for c in cursors:
        if c.kind == ci.CursorKind.MACRO_DEFINITION and c.spelling.startswith("MC_"):
            value = integer_macro_value(c)
            if value is None:
                continue
            cstype = "int" if -2**31 <= value < 2**31 else "long"
            model.constants.append((c.spelling, cstype, str(value)))
    # Typedefs: opaque handles, scalar aliases, structs.
    for c in cursors:
        if c.kind != ci.CursorKind.TYPEDEF_DECL:
            continue
        under = c.underlying_typedef_type
        canon = under.get_canonical()
        if canon.kind == ci.TypeKind.POINTER and canon.get_pointee().kind == ci.TypeKind.RECORD:
            decl = canon.get_pointee().get_declaration()
            if not decl.is_definition() and not any(ch.kind == ci.CursorKind.FIELD_DECL for ch in decl.get_children()):
                model.handles.append(c.spelling)
                continue
        if canon.kind == ci.TypeKind.RECORD:
            continue  # handled as a struct below
        if c.spelling in PRIMITIVES:
            continue
        model.aliases[c.spelling] = csharp_type(ci, under, model, f"typedef {c.spelling}")
    for c in cursors:
        if c.kind == ci.CursorKind.STRUCT_DECL and c.is_definition():
            name = c.spelling
            size = c.type.get_size()
            model.structs.append((name, [], size))
    for i, (name, fields, size) in enumerate(model.structs):
        decl = next(c for c in cursors if c.kind == ci.CursorKind.STRUCT_DECL and c.spelling == name and c.is_definition())
        for f in decl.get_children():
            if f.kind != ci.CursorKind.FIELD_DECL:
                continue
            ctx = f"{name}.{f.spelling}"
            offset = f.get_field_offsetof() // 8
            t = f.type
            if t.kind == ci.TypeKind.CONSTANTARRAY:
                elem = csharp_type(ci, t.get_array_element_type(), model, ctx)
                if elem not in ("byte", "sbyte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double"):
                    raise GenerationError(f"{ctx}: fixed arrays of {elem} cannot be blittable fixed buffers")
                decl_text = f"public fixed {elem} {f.spelling}[{t.get_array_size()}];"
            else:
                decl_text = f"public {csharp_type(ci, t, model, ctx)} {f.spelling};"
            fields.append((f.spelling, decl_text, offset))
        if not fields or fields[0][0] != "struct_size":
            raise GenerationError(f"struct {name}: the first field must be 'struct_size' (DESIGN.md section 4)")
    for c in cursors:
        if c.kind != ci.CursorKind.FUNCTION_DECL:
            continue
        ret = csharp_type(ci, c.result_type, model, f"{c.spelling} return")
        if ret != "int":
            raise GenerationError(f"{c.spelling}: every function returns the int32_t status (got {c.result_type.spelling})")
        params = [(csharp_type(ci, p.type, model, f"{c.spelling}({p.spelling})"), p.spelling)
                  for p in c.get_arguments()]
        model.functions.append((c.spelling, ret, params, comment_of(c)))
    if not model.functions:
        raise GenerationError("no functions found in the header")
    return model


CS_KEYWORDS = {"event", "object", "string", "base", "params", "ref", "out", "in", "fixed", "checked", "operator"}


def ident(name):
    return "@" + name if name in CS_KEYWORDS else name


def emit_csharp(model):
    out = []
    w = out.append
    w("// <auto-generated>")
    w(f"// Generated by bindings/generate_bindings.py from {HEADER}. Do not edit: run ./build.sh bindings.")
    w("// </auto-generated>")
    w("#pragma warning disable CS1591 // interop mirrors the C header, documented there")
    w("#pragma warning disable IDE1006 // C names are kept so the interop reads like the header")
    w("using System.Runtime.CompilerServices;")
    w("using System.Runtime.InteropServices;")
    w("")
    w("namespace MoeCutlass.Interop;")
    w("")
    w("/// <summary>Integer constants of the C header (MC_*).</summary>")
    w("internal static class NativeConstants")
    w("{")
    for name, cstype, value in model.constants:
        w(f"    public const {cstype} {name} = {value};")
    w("}")
    for name, fields, size in model.structs:
        w("")
        w(f"/// <summary>Blittable mirror of the C struct <c>{name}</c> ({size} bytes).</summary>")
        w("[StructLayout(LayoutKind.Sequential)]")
        w(f"internal unsafe struct {name}")
        w("{")
        for fname, decl, _ in fields:
            w(f"    {decl}")
        w("}")
    w("")
    w("/// <summary>Sizes and field offsets of the public structs as clang laid them out from the header.</summary>")
    w("internal static class NativeLayout")
    w("{")
    w("    /// <summary>(struct, field or empty for the struct's size, bytes).</summary>")
    w("    public static readonly (string Struct, string Field, long Value)[] Entries =")
    w("    [")
    for name, fields, size in model.structs:
        w(f"        (\"{name}\", \"\", {size}),")
        for fname, _, offset in fields:
            w(f"        (\"{name}\", \"{fname}\", {offset}),")
    w("    ];")
    w("}")
    w("")
    w("/// <summary>The exported functions of the native library; handles are <c>nint</c>.</summary>")
    w("internal static unsafe partial class NativeMethods")
    w("{")
    w(f"    public const string LibraryName = \"{LIBRARY_NAME}\";")
    for name, ret, params, comment in model.functions:
        w("")
        for line in comment:
            w(f"    // {line}")
        w("    [LibraryImport(LibraryName)]")
        w("    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]")
        plist = ", ".join(f"{t} {ident(n)}" for t, n in params)
        w(f"    public static partial {ret} {name}({plist});")
    w("}")
    return "\n".join(out) + "\n"


def emit_inc(model):
    out = [f"// Generated by bindings/generate_bindings.py from {HEADER}. Do not edit: run ./build.sh bindings.",
           "// Every public struct and field, for mc_get_struct_layout (define MC_LAYOUT_STRUCT/MC_LAYOUT_FIELD first)."]
    for name, fields, _ in model.structs:
        out.append(f"MC_LAYOUT_STRUCT({name})")
        for fname, _, _ in fields:
            out.append(f"MC_LAYOUT_FIELD({name}, {fname})")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed files are out of date")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()
    try:
        ci = load_clang()
        header = os.path.join(args.root, HEADER)
        model = build_model(ci, parse(ci, header), header)
        outputs = {CS_OUT: emit_csharp(model), INC_OUT: emit_inc(model)}
    except GenerationError as e:
        print(f"generate_bindings: {e}", file=sys.stderr)
        return 2
    stale = []
    for rel, text in outputs.items():
        path = os.path.join(args.root, rel)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current == text:
            continue
        if args.check:
            stale.append(rel)
            diff = difflib.unified_diff((current or "").splitlines(), text.splitlines(), f"{rel} (committed)",
                                        f"{rel} (from header)", lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print(f"wrote {rel}")
    if stale:
        print(f"bindings out of date: {', '.join(stale)}; run ./build.sh bindings", file=sys.stderr)
        return 1
    summary = f"{len(model.functions)} functions, {len(model.structs)} structs, {len(model.constants)} constants"
    print(("bindings up to date: " if args.check else "bindings: ") + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
