"""IGWidget on the kernel side, one file per part of ig_widget/widget/."""
