using Spectre.Console;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Progress over a known number of work items.</summary>
internal interface IWorkProgress
{
    /// <summary>Marks the start of an item (shown in the progress bar's description).</summary>
    void Begin(string item);

    /// <summary>Marks an item done; <paramref name="summary"/> is printed on its line in non-interactive mode.</summary>
    void Complete(string item, string summary);
}

/// <summary>
/// A Spectre.Console progress bar when stdout is an interactive terminal; otherwise one plain line per
/// finished item ("[3/44] case strategy: summary") so CI logs stay readable.
/// </summary>
internal static class WorkProgress
{
    public static T Run<T>(CommandEnvironment environment, string title, int total, Func<IWorkProgress, T> body)
    {
        if (!environment.Interactive)
        {
            return body(new LineProgress(environment.Console, total));
        }

        return environment.Console.Progress()
            .AutoClear(true)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new SpinnerColumn())
            .Start(context =>
            {
                ProgressTask task = context.AddTask(Markup.Escape(title), maxValue: total);
                return body(new BarProgress(task, title));
            });
    }

    private sealed class BarProgress(ProgressTask task, string title) : IWorkProgress
    {
        public void Begin(string item) => task.Description = Markup.Escape($"{title}: {item}");

        public void Complete(string item, string summary) => task.Increment(1);
    }

    private sealed class LineProgress(IAnsiConsole console, int total) : IWorkProgress
    {
        private int _done;

        public void Begin(string item)
        {
        }

        public void Complete(string item, string summary)
        {
            _done++;
            console.WriteLine($"[{_done}/{total}] {item}: {summary}");
        }
    }
}
