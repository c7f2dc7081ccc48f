"""The management plane: the ARM `Microsoft.ContainerService` API, its resources and their operations."""
