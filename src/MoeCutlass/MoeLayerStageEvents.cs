using System.Collections;

namespace MoeCutlass;

/// <summary>
/// The <see cref="MoeLayer.StageEventCount"/> events of a timed forward call (<see cref="MoeLayer.ForwardTimed"/>), created
/// on one context, and the stage times read from them. Reusable: each timed call records all of them again.
/// </summary>
public sealed class MoeLayerStageEvents : IReadOnlyList<MoeEvent>, IDisposable
{
    private readonly MoeEvent[] _events;

    /// <summary>Creates the events on <paramref name="context"/>.</summary>
    /// <param name="context">The context of the layer the events will time.</param>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is null.</exception>
    public MoeLayerStageEvents(MoeContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _events = new MoeEvent[MoeLayer.StageEventCount];
        try
        {
            for (int i = 0; i < _events.Length; i++)
            {
                _events[i] = context.CreateEvent();
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        Context = context;
    }

    /// <summary>The stages between consecutive events, in order: routing, permutation, gather + quantize, GEMM1,
    /// SiLU-and-mul + quantize, GEMM2, combine.</summary>
    public static IReadOnlyList<string> StageNames { get; } = ["route", "permute", "gather", "gemm1", "act", "gemm2", "combine"];

    /// <summary>The context the events belong to.</summary>
    public MoeContext Context { get; }

    /// <inheritdoc/>
    public int Count => _events.Length;

    /// <inheritdoc/>
    public MoeEvent this[int index] => _events[index];

    /// <summary>
    /// The milliseconds of each stage (<see cref="StageNames"/> order) of the last timed call: the elapsed time between
    /// consecutive events. Call once the call's work completed (after a stream or event synchronization).
    /// </summary>
    /// <returns>Seven times.</returns>
    public float[] StageMilliseconds()
    {
        float[] stages = new float[_events.Length - 1];
        for (int i = 0; i < stages.Length; i++)
        {
            stages[i] = MoeEvent.ElapsedMilliseconds(_events[i], _events[i + 1]);
        }

        return stages;
    }

    /// <summary>The milliseconds from the first to the last event of the last timed call.</summary>
    /// <returns>The whole call's time.</returns>
    public float TotalMilliseconds() => MoeEvent.ElapsedMilliseconds(_events[0], _events[^1]);

    /// <inheritdoc/>
    public IEnumerator<MoeEvent> GetEnumerator() => ((IEnumerable<MoeEvent>)_events).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Destroys the events. Safe to call more than once.</summary>
    public void Dispose()
    {
        foreach (MoeEvent? e in _events)
        {
            e?.Dispose();
        }
    }
}
