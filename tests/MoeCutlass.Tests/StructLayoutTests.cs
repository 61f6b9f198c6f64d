using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoeCutlass.Interop;

namespace MoeCutlass.Tests;

/// <summary>
/// Three views of every public struct must agree: clang's layout of the header (NativeLayout, generated), the C#
/// struct the generator emitted, and the layout the native library was compiled with (mc_get_struct_layout).
/// </summary>
[TestFixture]
public sealed unsafe class StructLayoutTests : NativeTestBase
{
    private static IEnumerable<TestCaseData> Entries() =>
        NativeLayout.Entries.Select(e => new TestCaseData(e.Struct, e.Field, e.Value)
            .SetArgDisplayNames(e.Field.Length == 0 ? $"sizeof({e.Struct})" : $"{e.Struct}.{e.Field}"));

    [TestCaseSource(nameof(Entries))]
    public void ClangCSharpAndNativeLayoutsAgree(string structName, string fieldName, long clangValue)
    {
        var type = typeof(NativeMethods).Assembly.GetType("MoeCutlass.Interop." + structName, throwOnError: true)!;
        long managed = fieldName.Length == 0 ? ManagedSize(type) : Marshal.OffsetOf(type, fieldName).ToInt64();
        long native = NativeValue(structName, fieldName);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(managed, Is.EqualTo(clangValue), "C# struct vs clang");
            Assert.That(native, Is.EqualTo(clangValue), "native library vs clang");
        }
    }

    [Test]
    public void EveryGeneratedStructAndFieldIsInTheTable()
    {
        var structs = typeof(NativeMethods).Assembly.GetTypes()
            .Where(t => t.IsValueType && t.Namespace == "MoeCutlass.Interop" && t.Name.StartsWith("mc_", StringComparison.Ordinal))
            .ToList();
        Assert.That(structs, Is.Not.Empty);
        foreach (var type in structs)
        {
            Assert.That(NativeLayout.Entries, Has.Some.Matches<(string Struct, string Field, long Value)>(e => e.Struct == type.Name && e.Field.Length == 0),
                type.Name);
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public))
            {
                Assert.That(NativeLayout.Entries, Has.Some.Matches<(string Struct, string Field, long Value)>(e => e.Struct == type.Name && e.Field == field.Name),
                    $"{type.Name}.{field.Name}");
            }
        }
    }

    [Test]
    public void UnknownNames_AreRejectedByTheNativeLibrary()
    {
        fixed (byte* name = Utf8.Z("mc_no_such_struct"))
        fixed (byte* field = Utf8.Z(""))
        {
            long value = -1;
            int status = NativeMethods.mc_get_struct_layout(name, field, &value);
            Assert.That(status, Is.EqualTo(NativeConstants.MC_STATUS_INVALID_ARGUMENT));
            Assert.That(value, Is.EqualTo(-1), "a rejected call writes nothing");
        }
    }

    private static long ManagedSize(Type type) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;

    private static long NativeValue(string structName, string fieldName)
    {
        fixed (byte* name = Utf8.Z(structName))
        fixed (byte* field = Utf8.Z(fieldName))
        {
            long value = -1;
            int status = NativeMethods.mc_get_struct_layout(name, field, &value);
            Assert.That(status, Is.EqualTo(NativeConstants.MC_STATUS_OK), $"mc_get_struct_layout({structName}, {fieldName})");
            return value;
        }
    }
}
