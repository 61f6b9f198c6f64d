using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// Context memory (device memory on a CUDA context, host memory on the CPU backend) owned by a <see cref="MoeContext"/>.
/// The untyped view of <see cref="DeviceBuffer{T}"/>, accepted where the element type is a runtime choice.
/// </summary>
/// <remarks>
/// The memory is never exposed as a <see cref="Span{T}"/> (it may not be host-accessible); use the copy methods of
/// <see cref="DeviceBuffer{T}"/>. Dispose a buffer to free it; an undisposed buffer is freed by its finalizer, always
/// before its context's native object is destroyed (see <see cref="MoeContext"/>).
/// </remarks>
public abstract class DeviceBuffer : IDisposable
{
    private protected DeviceBuffer(MoeContext context, BufferHandle handle, long length, int elementSize)
    {
        Context = context;
        Handle = handle;
        Length = length;
        ElementSize = elementSize;
    }

    /// <summary>The context that allocated this buffer.</summary>
    public MoeContext Context { get; }

    /// <summary>
    /// The address of the first element (a device pointer on CUDA), for interop with other libraries; 0 for an empty
    /// buffer (<see cref="Length"/> 0), which has no native allocation.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The buffer was disposed.</exception>
    public nint Pointer
    {
        get
        {
            ThrowIfDisposed();
            return Handle.DangerousGetHandle();
        }
    }

    /// <summary>The type as C# spells it, for messages: <c>DeviceBuffer&lt;byte&gt;</c>, <c>DeviceBuffer&lt;BFloat16&gt;</c>.</summary>
    public string TypeDisplayName => $"DeviceBuffer<{TypeName(ElementType)}>";

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>Size of one element in bytes.</summary>
    public int ElementSize { get; }

    /// <summary>Size of the buffer in bytes.</summary>
    public long SizeInBytes => Length * ElementSize;

    /// <summary>The element type.</summary>
    public abstract Type ElementType { get; }

    /// <summary>
    /// The library dtype of the elements: <see cref="float"/> is <see cref="DType.Float32"/>, <see cref="BFloat16"/>
    /// is <see cref="DType.BFloat16"/>, <see cref="Half"/> is <see cref="DType.Float16"/> and <see cref="byte"/> is
    /// <see cref="DType.Float8E4M3"/> (byte buffers are treated as e4m3 wherever a dtype is needed); null for other types.
    /// </summary>
    public abstract DType? ElementDType { get; }

    private int _disposed;

    /// <summary>Whether the buffer was disposed. (Its memory can outlive that: an <see cref="MoeLayer"/> that reads the
    /// buffer holds a reference on it until the layer is disposed.)</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0 || Handle.IsClosed;

    /// <summary>The owning handle (its value is the pointer).</summary>
    internal BufferHandle Handle { get; }

    /// <summary>Frees the memory. Safe to call more than once.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the memory when <paramref name="disposing"/> is true (the handle's own finalizer covers the other case).</summary>
    /// <param name="disposing">True from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            // The handle stays open while another object (a layer) holds a reference on it; the buffer is disposed anyway.
            Volatile.Write(ref _disposed, 1);
            Handle.Dispose();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{TypeDisplayName}[{Length}] on {Context}";

    /// <summary>Leases the buffer for one native call; throws ObjectDisposedException once disposed.</summary>
    internal HandleLease Lease()
    {
        ThrowIfDisposed();
        return new HandleLease(Handle);
    }

    /// <summary>Throws an <see cref="ObjectDisposedException"/> naming the type readably (<c>DeviceBuffer&lt;byte&gt;</c>) once disposed.</summary>
    private protected void ThrowIfDisposed()
    {
        if (IsDisposed)
        {
            throw new ObjectDisposedException(TypeDisplayName);
        }
    }

    /// <summary>A type's C# name: the keyword for built-in types (<c>byte</c>, <c>float</c>, <c>int</c>), else its name.</summary>
    internal static string TypeName(Type type) =>
        type == typeof(byte) ? "byte"
        : type == typeof(sbyte) ? "sbyte"
        : type == typeof(short) ? "short"
        : type == typeof(ushort) ? "ushort"
        : type == typeof(int) ? "int"
        : type == typeof(uint) ? "uint"
        : type == typeof(long) ? "long"
        : type == typeof(ulong) ? "ulong"
        : type == typeof(float) ? "float"
        : type == typeof(double) ? "double"
        : type.Name;
}

/// <summary>A typed buffer of context memory (device memory on CUDA) with <typeparamref name="T"/> elements.</summary>
/// <typeparam name="T">The element type: <see cref="float"/>, <see cref="BFloat16"/>, <see cref="Half"/>, <see cref="byte"/> (e4m3), <see cref="int"/>, ...</typeparam>
/// <remarks>
/// The host-span copies (<see cref="CopyFrom(ReadOnlySpan{T}, long)"/>, <see cref="CopyTo(Span{T}, long)"/>,
/// <see cref="ToArray"/>) are synchronous: they wait for all work on the context, so they see (and are ordered after)
/// everything enqueued before. <see cref="CopyFrom(DeviceBuffer{T}, MoeStream?)"/> and <see cref="Fill"/> are enqueued
/// on a stream.
/// </remarks>
public sealed class DeviceBuffer<T> : DeviceBuffer
    where T : unmanaged
{
    private static readonly DType? s_dtype =
        typeof(T) == typeof(float) ? DType.Float32
        : typeof(T) == typeof(BFloat16) ? DType.BFloat16
        : typeof(T) == typeof(Half) ? DType.Float16
        : typeof(T) == typeof(byte) ? DType.Float8E4M3
        : null;

    internal unsafe DeviceBuffer(MoeContext context, BufferHandle handle, long length)
        : base(context, handle, length, sizeof(T))
    {
    }

    /// <inheritdoc/>
    public override Type ElementType => typeof(T);

    /// <inheritdoc/>
    public override DType? ElementDType => s_dtype;

    /// <summary>Copies host data into the buffer, starting at element <paramref name="offset"/>; synchronous.</summary>
    /// <param name="source">The host data.</param>
    /// <param name="offset">The first element of this buffer to write.</param>
    /// <exception cref="ArgumentOutOfRangeException">The data does not fit at that offset.</exception>
    public unsafe void CopyFrom(ReadOnlySpan<T> source, long offset = 0)
    {
        CheckRange(offset, source.Length, nameof(source));
        using var lease = Lease();
        if (source.IsEmpty)
        {
            return;
        }

        nint context = Handle.Context.DangerousGetHandle();
        fixed (T* src = source)
        {
            NativeStatus.Check(NativeMethods.mc_memcpy_async(context, (T*)lease.Raw + offset, src, (long)source.Length * sizeof(T),
                NativeConstants.MC_COPY_HOST_TO_DEVICE, 0));
            NativeStatus.Check(NativeMethods.mc_context_synchronize(context));
        }
    }

    /// <summary>Copies buffer elements, starting at element <paramref name="offset"/>, to host memory; synchronous.</summary>
    /// <param name="destination">Where to copy; its length is the number of elements copied.</param>
    /// <param name="offset">The first element of this buffer to read.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the buffer.</exception>
    public unsafe void CopyTo(Span<T> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length, nameof(destination));
        using var lease = Lease();
        if (destination.IsEmpty)
        {
            return;
        }

        nint context = Handle.Context.DangerousGetHandle();
        fixed (T* dst = destination)
        {
            NativeStatus.Check(NativeMethods.mc_memcpy_async(context, dst, (T*)lease.Raw + offset, (long)destination.Length * sizeof(T),
                NativeConstants.MC_COPY_DEVICE_TO_HOST, 0));
            NativeStatus.Check(NativeMethods.mc_context_synchronize(context));
        }
    }

    /// <summary>
    /// Copies all of <paramref name="source"/> to the start of this buffer, enqueued on <paramref name="stream"/>
    /// (asynchronous on CUDA). Both buffers must belong to the same context.
    /// </summary>
    /// <param name="source">The buffer to copy from; at most as long as this one.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    public unsafe void CopyFrom(DeviceBuffer<T> source, MoeStream? stream = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length > Length)
        {
            throw new ArgumentException($"The source has {source.Length} elements, more than this buffer's {Length}.", nameof(source));
        }

        if (source.Handle.Context != Handle.Context)
        {
            throw new ArgumentException("The source buffer belongs to another context.", nameof(source));
        }

        using var destinationLease = Lease();
        using var sourceLease = source.Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (source.Length == 0)
        {
            return; // an empty source (pointer 0): nothing to copy
        }

        NativeStatus.Check(NativeMethods.mc_memcpy_async(Handle.Context.DangerousGetHandle(), (void*)destinationLease.Raw,
            (void*)sourceLease.Raw, source.SizeInBytes, NativeConstants.MC_COPY_DEVICE_TO_DEVICE, streamLease.Raw));
    }

    /// <summary>Sets every element to <paramref name="value"/>, enqueued on <paramref name="stream"/> (asynchronous on CUDA).</summary>
    /// <param name="value">The value; <typeparamref name="T"/> must be 1, 2 or 4 bytes wide.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not 1, 2 or 4 bytes wide.</exception>
    public unsafe void Fill(T value, MoeStream? stream = null)
    {
        if (sizeof(T) is not (1 or 2 or 4))
        {
            throw new NotSupportedException($"Fill supports elements of 1, 2 or 4 bytes; {typeof(T).Name} has {sizeof(T)}.");
        }

        using var lease = Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (Length == 0)
        {
            return; // an empty buffer (pointer 0): nothing to fill
        }

        NativeStatus.Check(NativeMethods.mc_fill_async(Handle.Context.DangerousGetHandle(), (void*)lease.Raw, &value, sizeof(T), Length,
            streamLease.Raw));
    }

    /// <summary>Copies the whole buffer to a new array; synchronous.</summary>
    /// <returns>The elements.</returns>
    /// <exception cref="InvalidOperationException">The buffer is longer than the largest array.</exception>
    public T[] ToArray()
    {
        if (Length > Array.MaxLength)
        {
            throw new InvalidOperationException($"The buffer has {Length} elements, more than an array can hold.");
        }

        var result = new T[Length];
        CopyTo(result);
        return result;
    }

    private void CheckRange(long offset, int count, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset > Length - count)
        {
            throw new ArgumentOutOfRangeException(name, count,
                $"{count} elements at offset {offset} do not fit in a buffer of {Length} elements.");
        }
    }
}
