"""Qt widgets of CNNViz Desktop (the window, drawing grid, 3D scene, probability bars)."""
