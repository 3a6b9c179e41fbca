"""Pure figure and overlay builders for the workstation: numpy in, plotly/RGB/Gradio values out."""
