using System.Diagnostics;
using System.Text;

namespace MoeCutlass.Cli.Scale;

/// <summary>How one child process ended.</summary>
/// <param name="ExitCode">Its exit code; null when it was killed (another rank failed, or the timeout passed).</param>
internal sealed record RankExit(int Rank, int? ExitCode, string StandardError);

/// <summary>The outcome of one launch of W ranks: <see cref="Failure"/> is null when every rank exited with 0.</summary>
internal sealed record LaunchOutcome(IReadOnlyList<RankExit> Ranks, string? Failure);

/// <summary>
/// Starts one child process per rank, waits for all of them with a timeout, and on the first failure (a rank exiting with
/// a non-zero code) kills the others, so that ranks blocked in an NCCL call waiting for a dead peer never hang the run.
/// The failure names each failed rank with its exit code and its stderr.
/// </summary>
internal static class RankLauncher
{
    /// <summary>Most stderr characters of one rank quoted in a failure.</summary>
    private const int StderrTail = 4000;

    public static LaunchOutcome Run(IReadOnlyList<ProcessStartInfo> starts, TimeSpan timeout) =>
        RunAsync(starts, timeout).GetAwaiter().GetResult();

    public static async Task<LaunchOutcome> RunAsync(IReadOnlyList<ProcessStartInfo> starts, TimeSpan timeout)
    {
        var processes = new List<Process>();
        // Ctrl-C or the end of this process must not leave ranks behind, blocked in a collective.
        void OnExit(object? sender, EventArgs e) => KillAll(processes);
        void OnCancel(object? sender, ConsoleCancelEventArgs e) => KillAll(processes);
        AppDomain.CurrentDomain.ProcessExit += OnExit;
        Console.CancelKeyPress += OnCancel;
        try
        {
            return await StartAndWait(processes, starts, timeout).ConfigureAwait(false);
        }
        finally
        {
            AppDomain.CurrentDomain.ProcessExit -= OnExit;
            Console.CancelKeyPress -= OnCancel;
        }
    }

    private static async Task<LaunchOutcome> StartAndWait(List<Process> processes, IReadOnlyList<ProcessStartInfo> starts, TimeSpan timeout)
    {
        var stderr = new List<Task<string>>();
        var exits = new List<Task>();
        try
        {
            foreach (ProcessStartInfo start in starts)
            {
                start.RedirectStandardError = true;
                start.RedirectStandardOutput = true;
                start.RedirectStandardInput = true;
                start.UseShellExecute = false;
                start.StandardErrorEncoding = Encoding.UTF8;
                start.StandardOutputEncoding = Encoding.UTF8;
                Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
                processes.Add(process);
                process.StandardInput.Close();
                stderr.Add(process.StandardError.ReadToEndAsync());
                _ = process.StandardOutput.ReadToEndAsync(); // drained so that a chatty child never blocks on a full pipe
                exits.Add(process.WaitForExitAsync());
            }
        }
        catch
        {
            KillAll(processes);
            throw;
        }

        Task deadline = Task.Delay(timeout);
        var pending = new HashSet<Task>(exits);
        string? failure = null;
        var killed = new HashSet<int>();
        while (pending.Count > 0)
        {
            Task finished = await Task.WhenAny(pending.Append(deadline)).ConfigureAwait(false);
            if (finished == deadline)
            {
                for (int r = 0; r < processes.Count; r++)
                {
                    if (!processes[r].HasExited)
                    {
                        killed.Add(r);
                    }
                }

                failure = $"rank(s) {string.Join(", ", killed)} did not finish within {timeout.TotalSeconds:0} s (killed; --timeout sets the limit)";
                KillAll(processes);
                break;
            }

            pending.Remove(finished);
            int rank = exits.IndexOf(finished);
            if (processes[rank].ExitCode != 0)
            {
                for (int r = 0; r < processes.Count; r++)
                {
                    if (r != rank && !processes[r].HasExited)
                    {
                        killed.Add(r);
                    }
                }

                KillAll(processes);
                break;
            }
        }

        foreach (Process process in processes)
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
        }

        var ranks = new List<RankExit>();
        for (int r = 0; r < processes.Count; r++)
        {
            ranks.Add(new RankExit(r, killed.Contains(r) ? null : processes[r].ExitCode, await stderr[r].ConfigureAwait(false)));
            processes[r].Dispose();
        }

        var failed = ranks.Where(r => r.ExitCode is not null and not 0).ToList();
        if (failed.Count > 0 || failure is not null)
        {
            var text = new StringBuilder(failure ?? "");
            foreach (RankExit rank in failed)
            {
                text.Append(text.Length > 0 ? "; " : "")
                    .Append($"rank {rank.Rank} exited with code {rank.ExitCode}: {Tail(rank.StandardError)}");
            }

            if (failure is null && killed.Count > 0)
            {
                text.Append($"; rank(s) {string.Join(", ", killed.Order())} killed");
            }

            failure = text.ToString();
        }

        return new LaunchOutcome(ranks, failure);
    }

    private static string Tail(string stderr)
    {
        string text = Infrastructure.ErrorReporter.OneLine(stderr.Trim().Length == 0 ? "(no stderr)" : stderr);
        return text.Length <= StderrTail ? text : "..." + text[^StderrTail..];
    }

    private static void KillAll(IEnumerable<Process> processes)
    {
        foreach (Process process in processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // It exited in between.
            }
        }
    }
}
