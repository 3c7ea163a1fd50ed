using System.Buffers;
using System.Text;

namespace PolicyDaemon.Tests;

/// <summary>Builds byte sequences for parser tests: whole, or split into segments at every byte.</summary>
internal static class Bytes
{
    public static ReadOnlySequence<byte> Of(string text) => new(Encoding.UTF8.GetBytes(text));

    /// <summary>One segment per byte: every boundary a parser can meet.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes) =>
        Gateway.Testing.Segments.Of(Enumerable.Range(0, bytes.Length).Select(i => (ReadOnlyMemory<byte>)bytes.AsMemory(i, 1)));

    public static ReadOnlySequence<byte> Segmented(string text) => Segmented(Encoding.UTF8.GetBytes(text));
}
