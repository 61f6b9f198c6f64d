namespace MoeCutlass;

/// <summary>
/// What every exception mapped from a native status carries: <see cref="MoeCutlassException"/> and its subclasses, and
/// <see cref="MoeCutlassArgumentException"/> (an <see cref="ArgumentException"/>, so it cannot derive from
/// <see cref="MoeCutlassException"/>). Catch <c>Exception ex when ex is IMoeCutlassException</c> to handle them all.
/// </summary>
public interface IMoeCutlassException
{
    /// <summary>The native status code (for an argument the facade rejected before any native call: the status the
    /// library would have returned).</summary>
    MoeStatus Status { get; }

    /// <summary>The native library's message for the failed call (from <c>mc_get_last_error</c>); empty when the facade
    /// detected the problem itself.</summary>
    string NativeMessage { get; }
}

/// <summary>
/// A failure reported by the native MoeCutlass library. The subclass tells the kind of failure, <see cref="Status"/>
/// the exact code and <see cref="NativeMessage"/> the library's own explanation (argument, value and rule).
/// </summary>
/// <remarks>The message has the form <c>"&lt;native message&gt; [MC_STATUS_NAME]"</c>. Rejected arguments are reported
/// as <see cref="MoeCutlassArgumentException"/>, an <see cref="ArgumentException"/> and not a subclass of this one; both
/// implement <see cref="IMoeCutlassException"/>.</remarks>
public class MoeCutlassException : Exception, IMoeCutlassException
{
    /// <summary>Creates an exception for a native status.</summary>
    /// <param name="message">The full message.</param>
    /// <param name="status">The native status code.</param>
    /// <param name="nativeMessage">The native library's message (may be empty).</param>
    /// <param name="innerException">The exception that caused this one, if any.</param>
    public MoeCutlassException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, innerException)
    {
        Status = status;
        NativeMessage = nativeMessage;
    }

    /// <summary>The native status code.</summary>
    public MoeStatus Status { get; }

    /// <summary>The native library's message for the failed call (from <c>mc_get_last_error</c>); may be empty.</summary>
    public string NativeMessage { get; }
}

/// <summary>
/// An argument was rejected, by the facade before any native call or by the native library:
/// <see cref="MoeStatus.NullPointer"/>, <see cref="MoeStatus.OutOfRange"/>,
/// <see cref="MoeStatus.Misaligned"/>, <see cref="MoeStatus.InvalidDtype"/>, <see cref="MoeStatus.InvalidStrategy"/>,
/// <see cref="MoeStatus.InvalidBackend"/>, <see cref="MoeStatus.ContextMismatch"/>, <see cref="MoeStatus.InvalidOffsets"/>,
/// <see cref="MoeStatus.BufferTooSmall"/>, <see cref="MoeStatus.InvalidStructSize"/> or <see cref="MoeStatus.InvalidArgument"/>.
/// A rejected call wrote nothing.
/// </summary>
/// <remarks>
/// An <see cref="ArgumentException"/> (so <c>catch (ArgumentException)</c> sees it) and an <see cref="IMoeCutlassException"/>;
/// it is not a <see cref="MoeCutlassException"/>. <see cref="ArgumentException.ParamName"/> is the parameter of the C# method
/// that was called (for example <c>output</c>, <c>expertOffsets</c>, <c>options</c>) where the facade knows it, and
/// <see cref="Exception.Message"/> names that parameter; <see cref="NativeMessage"/> keeps the library's own text (the C
/// field, e.g. <c>args-&gt;d</c>, and pointer values).
/// </remarks>
public class MoeCutlassArgumentException : ArgumentException, IMoeCutlassException
{
    /// <summary>Creates an argument exception for a status.</summary>
    /// <param name="message">The message (without the parameter name, which <see cref="ArgumentException"/> appends).</param>
    /// <param name="status">The status code.</param>
    /// <param name="nativeMessage">The native library's message (empty when the facade rejected the argument itself).</param>
    /// <param name="paramName">The managed parameter name, or null when unknown.</param>
    /// <param name="innerException">The exception that caused this one, if any.</param>
    public MoeCutlassArgumentException(string message, MoeStatus status, string nativeMessage, string? paramName = null,
        Exception? innerException = null)
        : base(message, paramName, innerException)
    {
        Status = status;
        NativeMessage = nativeMessage;
    }

    /// <inheritdoc/>
    public MoeStatus Status { get; }

    /// <inheritdoc/>
    public string NativeMessage { get; }
}

/// <summary>A native handle was destroyed or never created (<see cref="MoeStatus.InvalidHandle"/>).</summary>
public class MoeCutlassInvalidHandleException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassInvalidHandleException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>A valid request that this build or device cannot do (<see cref="MoeStatus.Unsupported"/>).</summary>
public class MoeCutlassUnsupportedException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassUnsupportedException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>No CUDA driver or device, or the device index does not exist (<see cref="MoeStatus.NoDevice"/>).</summary>
public class MoeCutlassNoDeviceException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassNoDeviceException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>A host or device allocation failed (<see cref="MoeStatus.OutOfMemory"/>).</summary>
public class MoeCutlassOutOfMemoryException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassOutOfMemoryException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>
/// A sticky device error (<see cref="MoeStatus.DeviceFault"/>): the context is unusable
/// (<see cref="MoeContext.IsUsable"/> is false) and must be disposed; create a new one.
/// </summary>
public class MoeCutlassDeviceFaultException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassDeviceFaultException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>Any other CUDA runtime error (<see cref="MoeStatus.CudaError"/>); the message names the error and the call.</summary>
public class MoeCutlassCudaException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassCudaException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
}

/// <summary>
/// The native library could not be loaded, or it is not compatible with this assembly (ABI version). The message lists
/// every place that was tried and why each failed. <see cref="MoeCutlassException.Status"/> is <see cref="MoeStatus.Internal"/>.
/// </summary>
public class MoeCutlassLibraryException : MoeCutlassException
{
    /// <summary>Creates a library-loading exception.</summary>
    /// <param name="message">The full message.</param>
    /// <param name="innerException">The exception that caused this one, if any.</param>
    public MoeCutlassLibraryException(string message, Exception? innerException = null)
        : base(message, MoeStatus.Internal, string.Empty, innerException)
    {
    }
}
