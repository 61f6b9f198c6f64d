namespace MoeCutlass;

/// <summary>
/// A failure reported by the native MoeCutlass library. The subclass tells the kind of failure, <see cref="Status"/>
/// the exact code and <see cref="NativeMessage"/> the library's own explanation (argument, value and rule).
/// </summary>
/// <remarks>The message has the form <c>"&lt;native message&gt; [MC_STATUS_NAME]"</c>.</remarks>
public class MoeCutlassException : Exception
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
/// The native library rejected an argument: <see cref="MoeStatus.NullPointer"/>, <see cref="MoeStatus.OutOfRange"/>,
/// <see cref="MoeStatus.Misaligned"/>, <see cref="MoeStatus.InvalidDtype"/>, <see cref="MoeStatus.InvalidStrategy"/>,
/// <see cref="MoeStatus.InvalidBackend"/>, <see cref="MoeStatus.ContextMismatch"/>, <see cref="MoeStatus.InvalidOffsets"/>,
/// <see cref="MoeStatus.BufferTooSmall"/>, <see cref="MoeStatus.InvalidStructSize"/> or <see cref="MoeStatus.InvalidArgument"/>.
/// A rejected call wrote nothing.
/// </summary>
public class MoeCutlassArgumentException : MoeCutlassException
{
    /// <inheritdoc cref="MoeCutlassException(string, MoeStatus, string, Exception?)"/>
    public MoeCutlassArgumentException(string message, MoeStatus status, string nativeMessage, Exception? innerException = null)
        : base(message, status, nativeMessage, innerException)
    {
    }
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
