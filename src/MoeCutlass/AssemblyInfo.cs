using System.Runtime.CompilerServices;

// Every native call goes through the generated [LibraryImport] declarations in Interop/NativeMethods.g.cs, whose
// parameters are all blittable (integers, pointers, nint handles): no runtime marshalling is needed anywhere.
[assembly: DisableRuntimeMarshalling]
