using System.Text.RegularExpressions;

namespace MoeCutlass.Internal;

/// <summary>
/// Maps the argument names of a native call (<c>args-&gt;d</c>, <c>desc-&gt;experts</c>, <c>cols</c>) to the parameters of
/// the C# method that made it, so that an argument exception speaks C#: its ParamName is the managed parameter and its
/// message names it instead of the C field and its pointer value. Used only on the failure path.
/// </summary>
internal sealed class ParameterMap
{
    private readonly Entry[] _entries;
    private readonly Regex _fields;

    /// <param name="entries">(native name, managed display name, managed parameter name); a display name may contain
    /// <c>{i}</c>, replaced by the native index (<c>desc-&gt;configs[2]</c>).</param>
    public ParameterMap(params (string Native, string Display, string Parameter)[] entries)
    {
        _entries = entries.Select(e => new Entry(e.Native, e.Display, e.Parameter)).ToArray();
        // Longest first, so that args->a_scales is not read as args->a. A pointer value after the name is dropped.
        string names = string.Join('|', _entries.Select(e => e.Native).OrderByDescending(n => n.Length).Select(Regex.Escape));
        _fields = new Regex($@"(?<![\w>])(?<name>{names})(?![\w])(?:\[(?<index>\d+)\])?(?: = 0x[0-9a-fA-F]+)?", RegexOptions.CultureInvariant);
    }

    /// <summary>The message with native names replaced by managed ones, and the parameter the message starts with.</summary>
    public (string Message, string? ParamName) Translate(string nativeMessage)
    {
        // The library prefixes the C function ("mc_grouped_gemm_run: "); the managed message names the parameter instead.
        Match function = s_function.Match(nativeMessage);
        string text = function.Success ? nativeMessage[function.Length..] : nativeMessage;
        string? paramName = null;
        string message = _fields.Replace(text, match =>
        {
            Entry entry = _entries.First(e => e.Native == match.Groups["name"].Value);
            if (match.Index == 0)
            {
                paramName = entry.Parameter;
            }

            string index = match.Groups["index"].Success ? match.Groups["index"].Value : string.Empty;
            return entry.Display.Contains("{i}", StringComparison.Ordinal)
                ? entry.Display.Replace("{i}", index.Length == 0 ? "i" : index, StringComparison.Ordinal)
                : index.Length == 0 ? entry.Display : $"{entry.Display}[{index}]";
        });
        return (message, paramName);
    }

    private static readonly Regex s_function = new(@"^mc_\w+: ", RegexOptions.CultureInvariant);

    private sealed record Entry(string Native, string Display, string Parameter);

    /// <summary><see cref="GroupedGemmPlan.Run(int, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, MoeStream?)"/>.</summary>
    public static readonly ParameterMap GroupedGemmRun = new(
        ("args->rows", "rows", "rows"),
        ("args->a", "a", "a"),
        ("args->a_scales", "aScales", "aScales"),
        ("args->b", "b", "b"),
        ("args->b_scales", "bScales", "bScales"),
        ("args->expert_offsets", "expertOffsets", "expertOffsets"),
        ("args->d", "output", "output"),
        ("stream", "stream", "stream"));

    /// <summary><see cref="MoeContext.CreateGroupedGemmPlan"/>.</summary>
    public static readonly ParameterMap GroupedGemmPlanCreate = new(
        ("desc->experts", "options.Experts", "options"),
        ("desc->n", "options.N", "options"),
        ("desc->k", "options.K", "options"),
        ("desc->output_dtype", "options.OutputDType", "options"),
        ("desc->strategy", "options.Strategy", "options"),
        ("desc->max_rows", "options.MaxRows", "options"),
        ("desc->config_count", "options.Configurations.Count", "options"),
        ("desc->configs", "options.Configurations[{i}]", "options"),
        ("desc->config_max_rows", "options.Configurations[{i}].MaxRows", "options"),
        ("desc->flags", "options.StaticWeights", "options"));

    /// <summary>Context creation (<see cref="MoeContext.Create"/>, <see cref="MoeContext.CreateCpu"/>, <see cref="MoeContext.CreateCuda"/>).</summary>
    public static readonly ParameterMap ContextCreate = new(
        ("desc->backend", "backend", "backend"),
        ("desc->device", "device", "device"),
        ("desc->cpu_threads", "threads", "threads"));

    /// <summary>Plan queries that take a row count (<see cref="GroupedGemmPlan.Resolve"/>, <see cref="GroupedGemmPlan.ResolveStrategy"/>).</summary>
    public static readonly ParameterMap Rows = new(("rows", "rows", "rows"));

    /// <summary>The quantization calls of <see cref="MoeContext"/>.</summary>
    public static readonly ParameterMap Quantize = new(
        ("input", "input", "input"),
        ("rows", "rows", "rows"),
        ("cols", "cols", "cols"),
        ("experts", "experts", "experts"),
        ("n", "n", "n"),
        ("k", "k", "k"),
        ("output", "output", "output"),
        ("scales", "scales", "scales"),
        ("stream", "stream", "stream"));

    /// <summary><see cref="MoeContext.Convert"/>.</summary>
    public static readonly ParameterMap Convert = new(
        ("src", "source", "source"),
        ("dst", "destination", "destination"),
        ("src_dtype", "sourceType", "sourceType"),
        ("dst_dtype", "destinationType", "destinationType"),
        ("count", "count", "count"),
        ("stream", "stream", "stream"));

    /// <summary><see cref="MoeContext.CreateMoeLayer"/> and <see cref="MoeContext.CreateMoeLayerFromHost(MoeLayerOptions, ReadOnlySpan{float}, ReadOnlySpan{float}, MoeStream?)"/>.</summary>
    public static readonly ParameterMap MoeLayerCreate = new(
        ("desc->total_experts", "options.TotalExperts", "options"),
        ("desc->first_expert", "options.FirstExpert", "options"),
        ("desc->local_experts", "options.LocalExperts", "options"),
        ("desc->top_k", "options.TopK", "options"),
        ("desc->hidden", "options.Hidden", "options"),
        ("desc->inter", "options.Intermediate", "options"),
        ("2 * desc->inter", "2 * options.Intermediate", "options"),
        ("desc->routing", "options.Routing", "options"),
        ("desc->normalize_routing_weights", "options.NormalizeRoutingWeights", "options"),
        ("desc->activation", "options.Activation", "options"),
        ("desc->input_dtype", "options.InputDType", "options"),
        ("desc->logits_dtype", "options.LogitsDType", "options"),
        ("desc->output_dtype", "options.OutputDType", "options"),
        ("desc->max_tokens", "options.MaxTokens", "options"),
        ("desc->strategy", "options.Strategy", "options"),
        ("weights->w13", "w13", "w13"),
        ("weights->w13_scales", "w13Scales", "w13Scales"),
        ("weights->w2", "w2", "w2"),
        ("weights->w2_scales", "w2Scales", "w2Scales"),
        ("parallel->mode", "options.Parallel.Mode", "options"),
        ("parallel->communicator", "options.Parallel.Communicator", "options"),
        ("parallel->tokens_per_rank", "options.Parallel.TokensPerRank", "options"));

    /// <summary><see cref="MoeCommunicator.Create"/>.</summary>
    public static readonly ParameterMap CommunicatorCreate = new(
        ("context", "context", "context"),
        ("id->struct_size", "uniqueId", "uniqueId"),
        ("id", "uniqueId", "uniqueId"),
        ("world_size", "worldSize", "worldSize"),
        ("rank", "rank", "rank"));

    /// <summary><see cref="MoeCommunicator.CreateAll"/>.</summary>
    public static readonly ParameterMap CommunicatorCreateAll = new(
        ("contexts", "contexts[{i}]", "contexts"),
        ("count", "contexts.Count", "contexts"));

    /// <summary><see cref="MoeLayer.Forward"/> and <see cref="MoeLayer.ForwardPrecomputed"/>.</summary>
    public static readonly ParameterMap MoeLayerForward = new(
        ("args->tokens", "tokens", "tokens"),
        ("args->hidden", "hidden", "hidden"),
        ("args->router_logits", "routerLogits", "routerLogits"),
        ("args->topk_ids", "topkIds", "topkIds"),
        ("args->topk_weights", "topkWeights", "topkWeights"),
        ("args->output", "output", "output"),
        ("stream", "stream", "stream"),
        ("event_count", "events.Count", "events"),
        ("events", "events", "events"));
}
