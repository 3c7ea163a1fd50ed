using System.Buffers;
using System.Text;

namespace PolicyDaemon.Tests;

/// <summary>Builds byte sequences for parser tests: whole, or split into segments at every byte.</summary>
internal static class Bytes
{
    public static ReadOnlySequence<byte> Of(string text) => new(Encoding.UTF8.GetBytes(text));

    /// <summary>One segment per byte: every boundary a parser can meet.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(bytes.AsMemory(0, 1), 0);
        var last = first;
        for (var i = 1; i < bytes.Length; i++)
        {
            last = last.Append(bytes.AsMemory(i, 1));
        }

        return new ReadOnlySequence<byte>(first, 0, last, 1);
    }

    public static ReadOnlySequence<byte> Segmented(string text) => Segmented(Encoding.UTF8.GetBytes(text));

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
