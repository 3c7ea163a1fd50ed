using System.Buffers;

namespace Gateway.Testing;

/// <summary>Byte sequences made of several segments, for parsers that must read across segment boundaries.</summary>
public static class Segments
{
    /// <summary>The pieces as one sequence, one segment each (empty pieces are skipped).</summary>
    public static ReadOnlySequence<byte> Of(IEnumerable<ReadOnlyMemory<byte>> pieces)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        Segment? first = null;
        Segment? last = null;
        foreach (var piece in pieces.Where(p => !p.IsEmpty))
        {
            last = last is null ? first = new Segment(piece, 0) : last.Append(piece);
        }

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

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
