namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Parses <c>--dtype</c> (the grouped GEMM's output type).</summary>
internal static class OutputDTypeSelection
{
    public const string OptionValues = "bf16, fp16";

    public static DType Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "bf16" or "bfloat16" => DType.BFloat16,
        "fp16" or "f16" or "float16" or "half" => DType.Float16,
        _ => throw new UsageException($"unknown output dtype '{value}' (valid: {OptionValues})"),
    };

    public static string Name(DType dtype) => dtype switch
    {
        DType.BFloat16 => "bf16",
        DType.Float16 => "fp16",
        DType.Float32 => "fp32",
        DType.Float8E4M3 => "e4m3",
        _ => dtype.ToString(),
    };
}
