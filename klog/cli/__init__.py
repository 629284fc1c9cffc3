"""Command-line entry points (click): klog-server, klog-topics, klog-groups, klog-configs."""
