using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoeCutlass.Interop;

namespace MoeCutlass.Internal;

/// <summary>Turns native status codes into exceptions.</summary>
internal static unsafe class NativeStatus
{
    /// <summary>
    /// Throws the exception mapped from <paramref name="status"/> unless it is <c>MC_STATUS_OK</c>. Call it right after
    /// the native call, on the same thread: it reads the thread-local <c>mc_get_last_error</c> message.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    [StackTraceHidden]
    public static void Check(int status)
    {
        if (status != NativeConstants.MC_STATUS_OK)
        {
            Throw(status);
        }
    }

    /// <summary>
    /// <see cref="Check(int)"/> for a call whose native argument names <paramref name="parameters"/> maps to the managed
    /// parameters: an argument exception then names the C# parameter (message and ParamName).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    [StackTraceHidden]
    public static void Check(int status, ParameterMap parameters)
    {
        if (status != NativeConstants.MC_STATUS_OK)
        {
            Throw(status, parameters);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    [StackTraceHidden]
    private static void Throw(int status, ParameterMap? parameters = null) => throw Create(status, parameters);

    /// <summary>Whether a status is one of the argument statuses (mapped to <see cref="MoeCutlassArgumentException"/>).</summary>
    public static bool IsArgumentStatus(MoeStatus status) => status is MoeStatus.NullPointer or MoeStatus.OutOfRange
        or MoeStatus.Misaligned or MoeStatus.InvalidDtype or MoeStatus.InvalidStrategy or MoeStatus.InvalidBackend
        or MoeStatus.ContextMismatch or MoeStatus.InvalidOffsets or MoeStatus.BufferTooSmall or MoeStatus.InvalidStructSize
        or MoeStatus.InvalidArgument;

    /// <summary>
    /// Builds (does not throw) the exception for a failed status, reading the native message now. With
    /// <paramref name="parameters"/>, an argument exception's message speaks of the managed parameters and its ParamName is set.
    /// </summary>
    public static Exception Create(int status, ParameterMap? parameters = null)
    {
        string nativeMessage = LastError();
        var moeStatus = (MoeStatus)status;
        string name = StatusName(status);
        string message = nativeMessage.Length == 0
            ? $"The native call failed without a message [{name}]"
            : $"{nativeMessage} [{name}]";
        if (IsArgumentStatus(moeStatus))
        {
            string? paramName = null;
            if (parameters is not null && nativeMessage.Length != 0)
            {
                (string translated, paramName) = parameters.Translate(nativeMessage);
                message = $"{translated} [{name}]";
            }

            return new MoeCutlassArgumentException(message, moeStatus, nativeMessage, paramName);
        }

        return moeStatus switch
        {
            MoeStatus.InvalidHandle => new MoeCutlassInvalidHandleException(message, moeStatus, nativeMessage),
            MoeStatus.Unsupported => new MoeCutlassUnsupportedException(message, moeStatus, nativeMessage),
            MoeStatus.NoDevice => new MoeCutlassNoDeviceException(message, moeStatus, nativeMessage),
            MoeStatus.OutOfMemory => new MoeCutlassOutOfMemoryException(message, moeStatus, nativeMessage),
            MoeStatus.DeviceFault => new MoeCutlassDeviceFaultException(message, moeStatus, nativeMessage),
            MoeStatus.CudaError => new MoeCutlassCudaException(message, moeStatus, nativeMessage),
            _ => new MoeCutlassException(message, moeStatus, nativeMessage),
        };
    }

    /// <summary>The calling thread's last native error message ("" when there is none).</summary>
    public static string LastError()
    {
        byte* message = null;
        if (NativeMethods.mc_get_last_error(&message) != NativeConstants.MC_STATUS_OK || message == null)
        {
            return string.Empty;
        }

        return Marshal.PtrToStringUTF8((nint)message) ?? string.Empty;
    }

    /// <summary>The symbolic name of a status ("MC_STATUS_OUT_OF_RANGE"), from the native library where it knows it.</summary>
    public static string StatusName(int status)
    {
        byte* name = null;
        if (NativeMethods.mc_status_name(status, &name) == NativeConstants.MC_STATUS_OK && name != null)
        {
            string? text = Marshal.PtrToStringUTF8((nint)name);
            if (!string.IsNullOrEmpty(text))
            {
                return text;
            }
        }

        return FallbackName(status);
    }

    /// <summary>The managed spelling of a status name, used when the native library does not know the code.</summary>
    public static string FallbackName(int status) => (MoeStatus)status switch
    {
        MoeStatus.Ok => "MC_STATUS_OK",
        MoeStatus.NullPointer => "MC_STATUS_NULL_POINTER",
        MoeStatus.OutOfRange => "MC_STATUS_OUT_OF_RANGE",
        MoeStatus.Misaligned => "MC_STATUS_MISALIGNED",
        MoeStatus.InvalidDtype => "MC_STATUS_INVALID_DTYPE",
        MoeStatus.InvalidStrategy => "MC_STATUS_INVALID_STRATEGY",
        MoeStatus.InvalidBackend => "MC_STATUS_INVALID_BACKEND",
        MoeStatus.InvalidHandle => "MC_STATUS_INVALID_HANDLE",
        MoeStatus.ContextMismatch => "MC_STATUS_CONTEXT_MISMATCH",
        MoeStatus.InvalidOffsets => "MC_STATUS_INVALID_OFFSETS",
        MoeStatus.BufferTooSmall => "MC_STATUS_BUFFER_TOO_SMALL",
        MoeStatus.InvalidStructSize => "MC_STATUS_INVALID_STRUCT_SIZE",
        MoeStatus.InvalidArgument => "MC_STATUS_INVALID_ARGUMENT",
        MoeStatus.NotReady => "MC_STATUS_NOT_READY",
        MoeStatus.Busy => "MC_STATUS_BUSY",
        MoeStatus.Unsupported => "MC_STATUS_UNSUPPORTED",
        MoeStatus.NoDevice => "MC_STATUS_NO_DEVICE",
        MoeStatus.OutOfMemory => "MC_STATUS_OUT_OF_MEMORY",
        MoeStatus.DeviceFault => "MC_STATUS_DEVICE_FAULT",
        MoeStatus.CudaError => "MC_STATUS_CUDA_ERROR",
        MoeStatus.Internal => "MC_STATUS_INTERNAL",
        _ => $"MC_STATUS_{status}",
    };

    /// <summary>Reads a NUL-terminated UTF-8 string from a fixed-size char array of a native struct.</summary>
    public static string FromFixed(byte* chars, int capacity)
    {
        int length = new ReadOnlySpan<byte>(chars, capacity).IndexOf((byte)0);
        if (length < 0)
        {
            length = capacity;
        }

        return System.Text.Encoding.UTF8.GetString(chars, length);
    }
}
