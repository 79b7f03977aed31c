import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import marimo as mo

    import ig_widget as igw

    return igw, mo


@app.cell
def _(igw, mo):
    images, _ = igw.demo.images()  # one 96x96 example per class, offline
    model, image = igw.demo.model(), images[0]  # a small bundled CNN (softmax over 6 shapes)
    widget = mo.ui.anywidget(
        igw.IGWidget(model, image, class_names=igw.demo.class_names, baseline="blur")
    )
    widget  # the live three-panel view
    return (widget,)


if __name__ == "__main__":
    app.run()
