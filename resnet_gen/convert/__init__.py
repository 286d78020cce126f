"""State-dict converters between our torchvision-style layout and other published layouts."""
