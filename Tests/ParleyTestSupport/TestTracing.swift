import ParleyCore

/// The process's tracer in tests.
public enum TestTracing {
    /// Parley's tracer, installed once for every suite that needs it: the test targets share one process, and
    /// InstrumentationSystem takes one bootstrap.
    public static let installed: Void = ParleyTracing.bootstrap()
}
